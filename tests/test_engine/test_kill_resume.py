"""Training survives SIGKILL at random moments (also mid-save), and resuming is exact.

Every run goes through tools/train.py in a subprocess, as a user runs it. The tiny RetinaNet
trains 4 epochs of 2 iterations; the reference run is never interrupted.
"""
import glob
import json
import os
import os.path as osp
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from helpers import REPO, TINY_CONFIG, run_tool
from mmdet_spine.engine.atomic_checkpoint import TMP_SUFFIX, is_complete_checkpoint
from mmdet_spine.engine.checkpoint_safety import safe_torch_load

EPOCHS, ITERS_PER_EPOCH = 4, 2
OPTIONS = [f'train_cfg.max_epochs={EPOCHS}', 'randomness.deterministic=True',
           'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']

# Loaded by the mid-save kill run only: writes half of the checkpoint, says so, then sleeps.
SLOW_SAVE_MODULE = '''
import os, time
from mmdet_spine.fileio import atomic_write

def _slow_write(fh, data):
    fh.write(data[:len(data) // 2])
    fh.flush()
    open(os.environ['SLOW_SAVE_MARKER'], 'w').close()
    time.sleep(120)
    fh.write(data[len(data) // 2:])

atomic_write._write = _slow_write
'''


def _train_cmd(cfg, wd, *extra):
    return [sys.executable, 'tools/train.py', cfg, '--work-dir', wd, *extra,
            '--cfg-options', *OPTIONS]


def _env(shapes_root, **extra):
    return dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1', SHAPES_ROOT=shapes_root,
                **extra)


def _losses(work_dir):
    """{iter: loss} of every run logged under ``work_dir`` (later runs win)."""
    out = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'loss' in rec:
                    out[rec['iter']] = rec['loss']
    return out


def _assert_work_dir_consistent(wd):
    """Every checkpoint loads; last_checkpoint (if any) names a complete one."""
    for path in glob.glob(osp.join(wd, '*.pth')):
        ckpt = safe_torch_load(path, map_location='cpu')
        assert ckpt['meta']['epoch'] >= 1 and 'state_dict' in ckpt, path
    pointer = osp.join(wd, 'last_checkpoint')
    if osp.exists(pointer):
        with open(pointer) as f:
            named = f.read()
        assert osp.isfile(named) and is_complete_checkpoint(named), named


@pytest.fixture(scope='module')
def reference_run(tiny_shapes, tmp_path_factory):
    """An uninterrupted 4-epoch run: its work dir."""
    wd = str(tmp_path_factory.mktemp('reference'))
    subprocess.run(_train_cmd(TINY_CONFIG, wd), cwd=REPO, env=_env(tiny_shapes), check=True,
                   capture_output=True, timeout=300)
    return wd


def _launch(cmd, env, log_path):
    log = open(log_path, 'w')
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT), log


def _wait_for(predicate, proc, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return predicate()
        time.sleep(0.02)
    raise AssertionError('timed out waiting for the training process')


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_at_random_moments_then_resume(reference_run, tiny_shapes, tmp_path):
    wd = str(tmp_path / 'work')
    rng = random.Random(7)

    # 1) killed while writing epoch_1.pth: half a checkpoint sits in a temp file only
    (tmp_path / 'slow_save.py').write_text(SLOW_SAVE_MODULE)
    cfg = tmp_path / 'slow_cfg.py'
    cfg.write_text(textwrap.dedent(f'''
        _base_ = {TINY_CONFIG!r}
        custom_imports = dict(imports=['mmdet_spine', 'slow_save'], allow_failed_imports=False)
    '''))
    marker = tmp_path / 'saving'
    env = _env(tiny_shapes, SLOW_SAVE_MARKER=str(marker),
               PYTHONPATH=f'{tmp_path}{os.pathsep}{os.environ.get("PYTHONPATH", "")}')
    proc, log = _launch(_train_cmd(str(cfg), wd), env, tmp_path / 'log0.txt')
    _wait_for(marker.exists, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    log.close()
    partial = glob.glob(osp.join(wd, f'.epoch_1.pth.*{TMP_SUFFIX}'))
    assert len(partial) == 1 and not is_complete_checkpoint(partial[0])
    assert not osp.exists(osp.join(wd, 'epoch_1.pth'))
    assert not osp.exists(osp.join(wd, 'last_checkpoint'))

    # 2) resumed and killed again at random moments after training (re)starts
    kills = 0
    for attempt in range(3):
        log_path = tmp_path / f'log{attempt + 1}.txt'
        proc, log = _launch(_train_cmd(TINY_CONFIG, wd, '--resume'), _env(tiny_shapes),
                            log_path)
        _wait_for(lambda: 'Epoch(train)' in log_path.read_text(), proc)
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(60)
        log.close()
        _assert_work_dir_consistent(wd)
    assert kills >= 2
    assert 'Removing' in (tmp_path / 'log1.txt').read_text()  # the stale temp file went

    # 3) the last resume finishes the job
    proc = subprocess.run(_train_cmd(TINY_CONFIG, wd, '--resume'), cwd=REPO,
                          env=_env(tiny_shapes), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _assert_work_dir_consistent(wd)
    assert not glob.glob(osp.join(wd, f'.*{TMP_SUFFIX}'))
    final = safe_torch_load(osp.join(wd, f'epoch_{EPOCHS}.pth'), map_location='cpu')
    ref = safe_torch_load(osp.join(reference_run, f'epoch_{EPOCHS}.pth'), map_location='cpu')
    assert (final['meta']['epoch'], final['meta']['iter']) == (EPOCHS, EPOCHS * ITERS_PER_EPOCH)
    assert (ref['meta']['epoch'], ref['meta']['iter']) == (EPOCHS, EPOCHS * ITERS_PER_EPOCH)
    assert sorted(f for f in os.listdir(wd) if f.endswith('.pth')) == \
        [f'epoch_{e}.pth' for e in range(1, EPOCHS + 1)]
    # deterministic: the interrupted run ends with the uninterrupted run's weights
    for k, v in ref['state_dict'].items():
        if v.is_floating_point():
            torch.testing.assert_close(final['state_dict'][k], v, rtol=0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_resume_from_epoch_reproduces_losses(reference_run, tiny_shapes, tmp_path):
    ref = _losses(reference_run)
    assert sorted(ref) == list(range(1, EPOCHS * ITERS_PER_EPOCH + 1))
    wd = str(tmp_path / 'resumed')
    os.makedirs(wd)
    shutil.copy(osp.join(reference_run, 'epoch_2.pth'), wd)
    run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', wd, '--resume',
              osp.join(wd, 'epoch_2.pth'), '--cfg-options', *OPTIONS],
             shapes_root=tiny_shapes)
    resumed = _losses(wd)
    later = list(range(2 * ITERS_PER_EPOCH + 1, EPOCHS * ITERS_PER_EPOCH + 1))
    assert sorted(resumed) == later
    for i in later:
        assert abs(resumed[i] - ref[i]) <= 1e-5, (i, resumed[i], ref[i])

    # control: without EpochSeedHook mmengine re-seeds with the start-of-run state on resume,
    # the random flips differ and so do the losses
    wd2 = str(tmp_path / 'no_epoch_seed')
    os.makedirs(wd2)
    shutil.copy(osp.join(reference_run, 'epoch_2.pth'), wd2)
    cfg = tmp_path / 'no_epoch_seed.py'
    cfg.write_text(f"_base_ = {TINY_CONFIG!r}\n"
                   "custom_hooks = [dict(type='FlushDenormalHook')]\n")
    run_tool(['tools/train.py', str(cfg), '--work-dir', wd2, '--resume',
              osp.join(wd2, 'epoch_2.pth'), '--cfg-options', *OPTIONS],
             shapes_root=tiny_shapes)
    uncontrolled = _losses(wd2)
    assert max(abs(uncontrolled[i] - ref[i]) for i in later) > 1e-4
