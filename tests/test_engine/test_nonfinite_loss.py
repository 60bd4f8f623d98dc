"""NaN/Inf losses stop (or skip) at the iteration they happen; no checkpoint holds them."""
import logging
import os
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner

import mmdet_spine  # noqa: F401  (registers the hooks and the atomic file backend)
from mmdet_spine.engine import NonFiniteLossError, NonFiniteLossHook
from mmdet_spine.engine.atomic_checkpoint import atomic_save_checkpoint

from helpers import TINY_CONFIG, run_tool


class ToyModel(BaseModel):
    """y = w.x; its ``poison`` call (1-based) returns a NaN loss, or a finite loss with an
    infinite gradient (``poison_kind='grad'``); ``poison_until`` keeps poisoning."""

    def __init__(self, poison=None, poison_until=None, poison_kind='loss'):
        super().__init__()
        self.fc = nn.Linear(2, 1, bias=False)
        nn.init.constant_(self.fc.weight, 0.5)
        self.poison, self.poison_until, self.poison_kind = poison, poison_until, poison_kind
        self.calls = 0
        self.weights_seen = []  # weights at the start of each call

    def forward(self, inputs, target=None, mode='loss'):
        self.calls += 1
        self.weights_seen.append(self.fc.weight.detach().clone())
        x = torch.stack(inputs) if isinstance(inputs, (list, tuple)) else inputs
        t = torch.stack(target) if isinstance(target, (list, tuple)) else target
        loss = ((self.fc(x) - t) ** 2).mean()
        last = self.poison_until or self.poison
        if self.poison is not None and self.poison <= self.calls <= last:
            if self.poison_kind == 'loss':
                loss = loss * float('nan')
            else:  # value 0, gradient d/dw sqrt(0) = inf
                w = self.fc.weight.sum()
                loss = loss + torch.sqrt(w - w.detach())
        return dict(loss_mse=loss, loss_aux=torch.ones(()))


def _dataset(n=4):
    g = torch.Generator().manual_seed(0)
    return [dict(inputs=torch.randn(2, generator=g), target=torch.randn(1, generator=g))
            for _ in range(n)]


def _runner(tmp_path, model, action='stop', max_epochs=3, **hook_kwargs):
    return Runner(
        model=model, work_dir=str(tmp_path),
        train_dataloader=dict(dataset=_dataset(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='NonFiniteLossHook', action=action, **hook_kwargs)],
        default_scope='mmdet', log_level='WARNING')


def test_nan_loss_stops_at_its_iteration_and_no_checkpoint_holds_it(tmp_path):
    model = ToyModel(poison=5)  # 2 iterations per epoch: iteration 5 = epoch 3, batch 1
    with pytest.raises(NonFiniteLossError) as e:
        _runner(tmp_path, model).train()
    msg = str(e.value)
    assert 'Non-finite loss at iteration 5 (epoch 3, batch 1/2)' in msg
    assert 'loss_mse=nan' in msg and 'loss_aux=1' in msg
    assert 'epoch_2.pth' in msg  # the last good checkpoint is named
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith('.pth')) == \
        ['epoch_1.pth', 'epoch_2.pth']
    with open(tmp_path / 'last_checkpoint') as f:
        assert f.read() == str(tmp_path / 'epoch_2.pth')
    # the update of iteration 5 was never applied
    assert torch.equal(model.fc.weight.detach(), model.weights_seen[-1])
    assert torch.isfinite(model.fc.weight).all()


class _Records(logging.Handler):
    """Keeps the messages of the logger it is attached to (mmengine's logger is a
    process-wide instance whose stream handler may hold another test's stdout)."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_nan_loss_skip_drops_only_that_update(tmp_path):
    model = ToyModel(poison=3)
    runner = _runner(tmp_path, model, action='skip')
    records = _Records()
    runner.logger.addHandler(records)
    try:
        runner.train()
    finally:
        runner.logger.removeHandler(records)
    log = '\n'.join(records.messages)
    hook = next(h for h in runner.hooks if isinstance(h, NonFiniteLossHook))
    assert hook.skipped == 1 and model.calls == 6
    # iteration 3 changed nothing; iterations 2 and 4 did
    w = model.weights_seen
    assert torch.equal(w[2], w[3])
    assert not torch.equal(w[1], w[2]) and not torch.equal(w[3], w[4])
    assert 'Skipped this update (1 skipped so far)' in log
    assert 'Non-finite loss at iteration 3 (epoch 2, batch 1/2)' in log
    assert osp.isfile(tmp_path / 'epoch_3.pth')


def test_skip_gives_up_after_consecutive_non_finite_iterations(tmp_path):
    model = ToyModel(poison=2, poison_until=100)
    with pytest.raises(NonFiniteLossError, match=r'iteration 4 .*3 iterations in a row'):
        _runner(tmp_path, model, action='skip', max_consecutive_skips=2).train()
    assert model.calls == 4
    assert torch.equal(model.weights_seen[1], model.fc.weight.detach())


def test_infinite_gradient_with_finite_loss_is_caught(tmp_path):
    model = ToyModel(poison=2, poison_kind='grad')
    with pytest.raises(NonFiniteLossError, match=r'Non-finite gradient at iteration 2 '):
        _runner(tmp_path, model).train()
    assert torch.isfinite(model.fc.weight).all()
    assert torch.equal(model.weights_seen[-1], model.fc.weight.detach())


def test_hook_rejects_unknown_action():
    with pytest.raises(ValueError, match=r"action='ignore' is not one of \('stop', 'skip'\)"):
        NonFiniteLossHook(action='ignore')


def test_checkpoint_with_non_finite_weights_is_never_written(tmp_path):
    path = str(tmp_path / 'epoch_1.pth')
    atomic_save_checkpoint({'state_dict': {'w': torch.ones(2)}, 'meta': {}}, path)
    before = open(path, 'rb').read()
    bad = {'state_dict': {'a': torch.ones(2), 'b.weight': torch.tensor([1.0, float('inf')])},
           'meta': {}}
    with pytest.raises(NonFiniteLossError, match=r'Refusing to write checkpoint .*b\.weight'):
        atomic_save_checkpoint(bad, path)
    assert open(path, 'rb').read() == before
    with pytest.raises(NonFiniteLossError):
        atomic_save_checkpoint(bad, str(tmp_path / 'epoch_2.pth'))
    # no temp file left either (the record is the sha256 of the good epoch_1.pth)
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth', 'epoch_1.pth.sha256']


@pytest.mark.slow
def test_train_tool_stops_on_nan_with_one_line(tiny_shapes, tmp_path):
    wd = tmp_path / 'w'
    proc = run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', str(wd), '--cfg-options',
                     'model.bbox_head.loss_bbox.loss_weight=nan'],
                    shapes_root=tiny_shapes, check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: Non-finite loss at iteration 1 (epoch 1, batch 1/2)')
    assert 'loss_bbox=nan' in last and 'train/0000' in last
    assert 'Traceback' not in proc.stderr
    assert not [f for f in os.listdir(wd) if f.endswith('.pth')]


def test_train_tool_with_mmengine_compile(tiny_shapes, tmp_path):
    """``compile`` in the config (mmengine compiles ``model.train_step``): dynamo used to
    trace into the guard's gradient check and fail on the optimizer's param groups (a
    traceback); the guarded update (backward, check, step) now runs eagerly. ``backend=eager``
    runs dynamo's tracing without inductor's code generation."""
    proc = run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', str(tmp_path),
                     '--cfg-options', 'compile.backend=eager', 'train_cfg.max_epochs=1'],
                    shapes_root=tiny_shapes)
    log = proc.stdout + proc.stderr
    assert 'Model has been "compiled"' in log and 'coco/bbox_mAP' in log
    assert osp.isfile(osp.join(tmp_path, 'epoch_1.pth'))
