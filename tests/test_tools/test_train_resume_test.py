"""The tools round trip: train -> resume -> test, through tools/*.py as a user runs them."""
import glob
import json
import os
import os.path as osp
import pickle

import pytest
import torch

from helpers import TINY_CONFIG, free_port, run_tool


@pytest.mark.slow
def test_train_resume_test_round_trip(tiny_shapes, tmp_path):
    wd = str(tmp_path / 'work')
    # epoch 1 only (2 iterations of batch 8), then resume to epoch 2
    run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', wd,
              '--cfg-options', 'train_cfg.max_epochs=1'], shapes_root=tiny_shapes)
    assert osp.isfile(osp.join(wd, 'epoch_1.pth'))
    proc = run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', wd, '--resume'],
                    shapes_root=tiny_shapes)
    assert 'resumed epoch: 1' in (proc.stdout + proc.stderr)
    ckpt = torch.load(osp.join(wd, 'epoch_2.pth'), map_location='cpu', weights_only=False)
    assert ckpt['meta']['epoch'] == 2 and ckpt['meta']['iter'] == 4
    # explicit path resume of a finished run trains nothing more and still works
    run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', wd, '--resume',
              osp.join(wd, 'epoch_2.pth')], shapes_root=tiny_shapes)

    out = str(tmp_path / 'preds.pkl')
    proc = run_tool(['tools/test.py', TINY_CONFIG, osp.join(wd, 'epoch_2.pth'),
                     '--work-dir', wd, '--out', out, '--show-dir', 'vis'],
                    shapes_root=tiny_shapes)
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr
    assert osp.getsize(out) > 0
    assert len(glob.glob(osp.join(wd, '*', 'vis', '*.png'))) == 8

    # --fuse-conv-bn: every BN folded, the same predictions within float rounding
    fused_out = str(tmp_path / 'fused.pkl')
    proc = run_tool(['tools/test.py', TINY_CONFIG, osp.join(wd, 'epoch_2.pth'),
                     '--work-dir', wd, '--out', fused_out, '--fuse-conv-bn'],
                    shapes_root=tiny_shapes)
    log = proc.stdout + proc.stderr
    assert 'FuseConvBNHook: 0 norm layers left' in log, log[-3000:]
    plain, fused = (pickle.load(open(p, 'rb')) for p in (out, fused_out))
    assert len(plain) == len(fused) == 8
    for a, b in zip(plain, fused):
        sa, sb = a['pred_instances']['scores'][:20], b['pred_instances']['scores'][:20]
        assert len(sa) == len(sb) > 0
        assert (sa - sb).abs().max() < 1e-4


def test_resume_with_weights_only_file_is_a_clear_error(tmp_path):
    path = tmp_path / 'weights.pth'
    torch.save({'w': torch.ones(1)}, path)
    proc = run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', str(tmp_path / 'w'),
                     '--resume', str(path)], check=False)
    assert proc.returncode == 2
    assert 'not an mmengine training checkpoint' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_missing_config_is_a_clear_error(tmp_path):
    proc = run_tool(['tools/train.py', 'configs/nope.py'], check=False)
    assert proc.returncode == 2 and 'Config file not found: configs/nope.py' in proc.stderr


def test_test_tool_refuses_malicious_checkpoint(tmp_path, tiny_shapes):
    marker = tmp_path / 'pwned'

    class Evil:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    torch.save({'state_dict': {}, 'x': Evil()}, tmp_path / 'evil.pth')
    proc = run_tool(['tools/test.py', TINY_CONFIG, str(tmp_path / 'evil.pth'), '--work-dir',
                     str(tmp_path / 'w')], shapes_root=tiny_shapes, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert 'Refusing to load' in proc.stderr and 'system' in proc.stderr
    assert not marker.exists()


@pytest.mark.slow
def test_dist_train_two_processes_on_cpu(tiny_shapes, tmp_path):
    wd = str(tmp_path / 'dist')
    proc = run_tool(['bash', 'tools/dist_train.sh', TINY_CONFIG, '2', '--work-dir', wd,
                     '--cfg-options', 'train_cfg.max_epochs=1',
                     'train_dataloader.batch_size=4'],
                    shapes_root=tiny_shapes,
                    env={'PORT': str(free_port()), 'PYTHON': __import__('sys').executable})
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log and 'GPU number: 2' in log  # world size 2
    ckpts = sorted(os.listdir(wd))
    assert [c for c in ckpts if c.endswith('.pth')] == ['epoch_1.pth']
    with open(osp.join(wd, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('epoch_1.pth')
    # 16 images, 2 processes x batch 4 -> 2 iterations per process
    scalars = glob.glob(osp.join(wd, '*', 'vis_data', 'scalars.json'))
    assert len(scalars) == 1  # only rank 0 logs
    with open(scalars[0]) as f:
        iters = [json.loads(line)['iter'] for line in f if '"loss"' in line]
    assert iters[-1] == 2


def test_amp_on_the_cpu_trains_in_bfloat16(tiny_shapes, tmp_path):
    """``--amp`` without CUDA: mmengine's AmpOptimWrapper needs a GPU, so the CPU gets
    bfloat16 autocast (CPUAmpOptimWrapper) and the run trains and saves as usual."""
    wd = str(tmp_path / 'work')
    proc = run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', wd, '--amp',
                     '--cfg-options', 'train_cfg.max_epochs=1'], shapes_root=tiny_shapes)
    assert 'CPUAmpOptimWrapper: bfloat16 autocast on the CPU' in proc.stdout + proc.stderr
    ckpt = torch.load(osp.join(wd, 'epoch_1.pth'), map_location='cpu', weights_only=False)
    assert ckpt['meta']['iter'] == 2
    assert all(v.dtype == torch.float32 for v in ckpt['state_dict'].values()
               if v.is_floating_point())
