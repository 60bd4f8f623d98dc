"""Every checkpoint we write has a sha256 record that is checked when it is loaded; resuming
takes the newest complete checkpoint that verifies; max_keep_ckpts survives a kill."""
import glob
import hashlib
import logging
import os
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint

import mmdet_spine  # noqa: F401
from mmdet_spine.engine import AtomicCheckpointHook, SpineRunner, find_resumable_checkpoint
from mmdet_spine.engine.atomic_checkpoint import ATOMIC_BACKEND
from mmdet_spine.engine.cli import check_resume_checkpoint
from mmdet_spine.errors import CheckpointIntegrityError
from mmdet_spine.fileio import write_checkpoint_bytes


class Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, inputs, target=None, mode='loss'):
        x = torch.stack(inputs)
        return dict(loss=((self.fc(x) - torch.stack(target)) ** 2).mean())


def _runner(work_dir, max_epochs, max_keep_ckpts=-1, resume=False, cls=SpineRunner):
    g = torch.Generator().manual_seed(0)
    data = [dict(inputs=torch.randn(2, generator=g), target=torch.randn(1, generator=g))
            for _ in range(4)]
    return cls(
        model=Toy(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=data, batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook', interval=1,
                                           max_keep_ckpts=max_keep_ckpts)),
        resume=resume, default_scope='mmdet', log_level='WARNING')


def _flip(path, offset=None):
    data = bytearray(open(path, 'rb').read())
    offset = len(data) // 2 if offset is None else offset
    data[offset] ^= 0x01
    with open(path, 'wb') as f:
        f.write(data)


def _pth(d):
    return sorted(osp.basename(p) for p in glob.glob(osp.join(str(d), '*.pth')))


def test_saved_checkpoints_carry_a_sha256sum_record(tmp_path):
    _runner(tmp_path, 2).train()
    assert _pth(tmp_path) == ['epoch_1.pth', 'epoch_2.pth']
    for name in _pth(tmp_path):
        digest = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert (tmp_path / f'{name}.sha256').read_text() == f'{digest}  {name}\n'


def test_a_plain_mmengine_runner_with_our_hook_also_writes_records(tmp_path):
    from mmengine.runner import Runner
    _runner(tmp_path, 1, cls=Runner).train()
    assert (tmp_path / 'epoch_1.pth.sha256').is_file()


def test_damaged_checkpoint_is_one_line_and_never_loaded(tmp_path):
    _runner(tmp_path, 1).train()
    path = str(tmp_path / 'epoch_1.pth')
    assert _load_checkpoint(path)['meta']['epoch'] == 1
    _flip(path)
    with pytest.raises(CheckpointIntegrityError) as e:
        _load_checkpoint(path)  # what load_from, --resume and tools/test.py call
    assert '\n' not in str(e.value) and path in str(e.value)
    with pytest.raises(CheckpointIntegrityError, match='--resume: .*does not match'):
        check_resume_checkpoint(path)


def test_files_without_a_record_load_as_before(tmp_path):
    torch.save({'state_dict': {'w': torch.ones(2)}}, tmp_path / 'theirs.pth')
    assert _load_checkpoint(str(tmp_path / 'theirs.pth'))['state_dict']['w'].tolist() == [1, 1]


def test_record_is_dropped_before_a_checkpoint_is_replaced(tmp_path, monkeypatch):
    """A kill between the new checkpoint's rename and its record leaves no stale record."""
    from mmdet_spine.fileio import atomic_write as aw
    path = str(tmp_path / 'epoch_1.pth')
    write_checkpoint_bytes(b'old bytes', path)
    real = aw.atomic_write_bytes

    def killed_after_the_checkpoint(data, dst, before_replace=None):
        if dst.endswith('.sha256'):
            raise KeyboardInterrupt  # the process dies here
        return real(data, dst, before_replace)

    monkeypatch.setattr('mmdet_spine.fileio.integrity.atomic_write_bytes',
                        killed_after_the_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        write_checkpoint_bytes(b'new bytes', path)
    assert open(path, 'rb').read() == b'new bytes' and not osp.exists(path + '.sha256')


def test_resume_takes_the_newest_complete_checkpoint_whatever_last_checkpoint_says(tmp_path):
    _runner(tmp_path, 3).train()
    # killed while last_checkpoint was being rewritten: it still names epoch 2
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_3.pth')
    runner = _runner(tmp_path, 4, resume=True)
    runner.train()
    assert runner.epoch == 4 and _pth(tmp_path)[-1] == 'epoch_4.pth'
    ckpt = _load_checkpoint(str(tmp_path / 'epoch_4.pth'))
    assert ckpt['meta']['iter'] == 8  # continued at iteration 6, not 4


def test_resume_falls_back_to_the_newest_checkpoint_that_verifies(tmp_path, caplog):
    _runner(tmp_path, 3).train()
    _flip(str(tmp_path / 'epoch_3.pth'))
    records = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        found = find_resumable_checkpoint(str(tmp_path))
    finally:
        logger.removeHandler(handler)
    assert found == str(tmp_path / 'epoch_2.pth')
    assert any('Not resuming from' in m and 'epoch_3.pth' in m and 'sha256' in m
               for m in records), records
    # an incomplete file (e.g. written in place by another tool) is passed over too
    (tmp_path / 'epoch_4.pth').write_bytes(b'PK\x03\x04 cut')
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_2.pth')
    # the explicit path says which one would work
    with pytest.raises(CheckpointIntegrityError, match='newest checkpoint there that '
                                                       r'verifies is .*epoch_2\.pth'):
        check_resume_checkpoint(str(tmp_path / 'epoch_3.pth'))


def test_max_keep_ckpts_cleans_up_after_a_kill(tmp_path, monkeypatch):
    # a kill right after last_checkpoint was rewritten, before the outdated file went
    def killed(self, path):
        raise SystemExit('killed')

    monkeypatch.setattr(AtomicCheckpointHook, '_remove', killed)
    with pytest.raises(SystemExit):
        _runner(tmp_path, 3, max_keep_ckpts=2).train()
    assert _pth(tmp_path) == ['epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth']
    monkeypatch.undo()
    # the next run (here a resume) removes it, with its record
    _runner(tmp_path, 4, max_keep_ckpts=2, resume=True).train()
    assert _pth(tmp_path) == ['epoch_3.pth', 'epoch_4.pth']
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith('.sha256')) == \
        ['epoch_3.pth.sha256', 'epoch_4.pth.sha256']


def test_atomic_backend_is_registered_and_selected_for_local_dirs(tmp_path):
    ckpt = {'state_dict': {'w': torch.ones(1)}, 'meta': {}}
    save_checkpoint(ckpt, str(tmp_path / 'a.pth'), backend_args=dict(backend=ATOMIC_BACKEND))
    assert (tmp_path / 'a.pth.sha256').is_file()
    save_checkpoint(ckpt, str(tmp_path / 'b.pth'))  # mmengine's own writer is left as it is
    assert not (tmp_path / 'b.pth.sha256').exists()
