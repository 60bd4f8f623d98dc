"""CPU (gloo) distributed training: 2 x batch b equals 1 x batch 2b, and a dead or hung worker
makes the others exit with an error instead of hanging."""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest

from helpers import REPO, TINY_CONFIG, free_port, run_tool

# ATSS normalises its losses by all-reduced counts and GN is per-sample, so 2 processes x 4
# images are mathematically one process x 8 images; no flips (each rank has its own RNG).
EQUIVALENT_CONFIG = f'''
_base_ = {TINY_CONFIG!r}
norm = dict(type='GN', num_groups=4, requires_grad=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
model = dict(
    type='ATSS',
    backbone=dict(norm_cfg=norm),
    bbox_head=dict(
        _delete_=True, type='ATSSHead', num_classes=3, in_channels=16, feat_channels=16,
        stacked_convs=1, norm_cfg=norm,
        anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=8,
                              scales_per_octave=1, strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0],
                        target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    train_cfg=dict(_delete_=True, assigner=dict(type='ATSSAssigner', topk=9),
                   allowed_border=-1, pos_weight=-1, debug=False))
'''
NO_VAL = ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']


def _losses(work_dir):
    [path] = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        recs = [json.loads(line) for line in f]
    return {r['iter']: r for r in recs if 'loss' in r}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_processes_match_one_process_with_double_batch(tiny_shapes, tmp_path):
    cfg = tmp_path / 'atss_gn.py'
    cfg.write_text(EQUIVALENT_CONFIG)
    opts = ['train_cfg.max_epochs=2', 'randomness.deterministic=True', *NO_VAL]
    one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
    run_tool(['tools/train.py', str(cfg), '--work-dir', one, '--cfg-options',
              'train_dataloader.batch_size=8', *opts], shapes_root=tiny_shapes)
    proc = run_tool(['bash', 'tools/dist_train.sh', str(cfg), '2', '--work-dir', two,
                     '--cfg-options', 'train_dataloader.batch_size=4', *opts],
                    shapes_root=tiny_shapes,
                    env={'PORT': str(free_port()), 'PYTHON': sys.executable})
    assert 'Distributed training: True' in proc.stdout + proc.stderr
    a, b = _losses(one), _losses(two)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]  # 16 images: 2 iterations per epoch
    for i in a:
        for term in ('loss', 'loss_cls', 'loss_bbox', 'loss_centerness'):
            assert b[i][term] == pytest.approx(a[i][term], rel=1e-4, abs=1e-5), (i, term)
    assert a[4]['loss'] != pytest.approx(a[1]['loss'], rel=1e-3)  # it did train


def _children(pid):
    kids = []
    for stat in glob.glob('/proc/[0-9]*/stat'):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.split('/')[2]))
    return kids


def _descendants(pid):
    out, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        out += kids
        todo += kids
    return out


def _environ(pid):
    try:
        with open(f'/proc/{pid}/environ', 'rb') as f:
            return dict(e.split(b'=', 1) for e in f.read().split(b'\0') if b'=' in e)
    except OSError:
        return {}


def _wait_for_training(log_path, proc, timeout=180):
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if 'Epoch(train)' in log_path.read_text():
            return
        time.sleep(0.1)
    raise AssertionError('training did not start:\n' + log_path.read_text()[-3000:])


def _env(tiny_shapes, **extra):
    return dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1', SHAPES_ROOT=tiny_shapes,
                **extra)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_killed_worker_stops_dist_train(tiny_shapes, tmp_path):
    """SIGKILL rank 1 of tools/dist_train.sh: the whole job exits with one line naming it."""
    log_path = tmp_path / 'log.txt'
    cmd = ['bash', 'tools/dist_train.sh', TINY_CONFIG, '2', '--work-dir', str(tmp_path / 'w'),
           '--cfg-options', 'train_cfg.max_epochs=1000', 'train_dataloader.batch_size=4',
           'env_cfg.dist_cfg.timeout=30', *NO_VAL]
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                env=_env(tiny_shapes, PORT=str(free_port()),
                                         PYTHON=sys.executable))
        try:
            _wait_for_training(log_path, proc)
            rank1 = [p for p in _descendants(proc.pid) if _environ(p).get(b'RANK') == b'1'
                     and b'LOCAL_RANK' in _environ(p)]
            assert len(rank1) == 1, rank1
            os.kill(rank1[0], signal.SIGKILL)
            rc = proc.wait(timeout=240)  # bounded: a hang fails the test here
        finally:
            for pid in _descendants(proc.pid) if proc.poll() is None else []:
                os.kill(pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert rc != 0
    text = log_path.read_text()
    assert 'SIGKILL' in text or 'Signal 9' in text or 'exitcode  : -9' in text, text[-3000:]
    # one line for the job, naming the rank and why; no traceback from any rank (#14)
    errors = [line for line in text.splitlines() if line.startswith('error: ')]
    assert errors == [errors[-1]] and errors[0].startswith('error: rank 1 (pid ')
    assert 'was killed by SIGKILL (signal 9)' in errors[0], text[-3000:]
    assert 'Traceback' not in text and 'ChildFailedError' not in text, text[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_hung_peer_makes_rank0_exit_after_the_timeout(tiny_shapes, tmp_path):
    """Two ranks started by hand (no torchrun to clean up): rank 1 freezes (SIGSTOP), rank 0
    fails at its next collective once env_cfg.dist_cfg.timeout (10 s) has passed."""
    port = str(free_port())
    procs, logs = [], []
    for rank in (0, 1):
        path = tmp_path / f'rank{rank}.txt'
        logs.append(path)
        with open(path, 'w') as log:
            procs.append(subprocess.Popen(
                [sys.executable, 'tools/train.py', TINY_CONFIG, '--launcher', 'pytorch',
                 '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                 'train_cfg.max_epochs=1000', 'train_dataloader.batch_size=4',
                 'env_cfg.dist_cfg.timeout=10', *NO_VAL],
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                env=_env(tiny_shapes, MASTER_ADDR='127.0.0.1', MASTER_PORT=port,
                         WORLD_SIZE='2', RANK=str(rank), LOCAL_RANK=str(rank))))
    try:
        _wait_for_training(logs[0], procs[0])
        procs[1].send_signal(signal.SIGSTOP)
        rc = procs[0].wait(timeout=240)  # bounded: a hang fails the test here
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert rc != 0
    text = logs[0].read_text()
    assert 'timed out' in text.lower() or 'timeout' in text.lower(), text[-3000:]
    errors = [line for line in text.splitlines() if line.startswith('error: ')]
    assert len(errors) == 1 and errors[0].startswith('error: [rank 0] a collective with the '
                                                     'other ranks failed'), text[-3000:]
    assert 'Traceback' not in text, text[-3000:]
