"""Checkpoint files are replaced atomically; resuming skips incomplete ones."""
import os

import pytest
import torch

from mmdet_spine.fileio import atomic_write
from mmdet_spine.engine.atomic_checkpoint import (atomic_save_checkpoint, atomic_write_bytes,
                                                  find_resumable_checkpoint,
                                                  is_complete_checkpoint)
from mmdet_spine.fileio import safe_torch_load


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / 'last_checkpoint'
    atomic_write_bytes(b'old', str(path))

    def crash(fh, data):
        fh.write(data[:2])
        raise OSError('disk full')

    monkeypatch.setattr(atomic_write, '_write', crash)
    with pytest.raises(OSError, match='disk full'):
        atomic_write_bytes(b'new content', str(path))
    assert path.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['last_checkpoint']


def test_saved_checkpoint_is_complete_and_loads(tmp_path):
    path = str(tmp_path / 'epoch_1.pth')
    atomic_save_checkpoint({'meta': {'epoch': 1}, 'state_dict': {'w': torch.arange(3.)}}, path)
    assert is_complete_checkpoint(path)
    assert safe_torch_load(path)['state_dict']['w'].tolist() == [0, 1, 2]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # as open() makes, not mkstemp's


def test_resume_falls_back_to_newest_complete_checkpoint(tmp_path):
    for epoch in (1, 2, 3):
        atomic_save_checkpoint({'meta': {'epoch': epoch}, 'state_dict': {}},
                               str(tmp_path / f'epoch_{epoch}.pth'))
    data = (tmp_path / 'epoch_3.pth').read_bytes()
    (tmp_path / 'epoch_3.pth').write_bytes(data[:len(data) // 2])  # e.g. an old in-place writer
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_3.pth'))
    assert not is_complete_checkpoint(str(tmp_path / 'epoch_3.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_2.pth')
    # a stale last_checkpoint (a kill while it was being rewritten) does not win over a newer
    # complete checkpoint (#14: it resumed from epoch 9 although epoch_10.pth was complete)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_2.pth')
    assert find_resumable_checkpoint(str(tmp_path / 'nothing_here')) is None
