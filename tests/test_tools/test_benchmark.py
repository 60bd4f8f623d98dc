"""tools/analysis_tools/benchmark.py: runs on every config family and writes every field.

Timing values are only checked to be positive (no timing assertions)."""
import argparse
import json
import os
import os.path as osp

import pytest
import torch

from helpers import REPO, TINY_CONFIG, load_tool, run_tool

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark.py')
MASK_RCNN = osp.join(REPO, 'configs', 'spinenet', 'mask-rcnn_spinenet-49s-tiny_8xb8-8e_shapes.py')
SPINENET_TINY = osp.join(REPO, 'configs', 'spinenet',
                         'retinanet_spinenet-49s-tiny_8xb8-5e_shapes.py')
# effdet's worker imports effdet behind the tests' torchvision stand-in (tests/ on its path)
EFFDET_ENV = dict(MMDET_SPINE_EFFDET_PRELUDE='torchvision_standin',
                  PYTHONPATH=os.pathsep.join(p for p in (osp.join(REPO, 'tests'),
                                                         os.environ.get('PYTHONPATH')) if p))
EFFDET_D0 = osp.join(REPO, 'configs', 'efficientdet', 'efficientdet_d0_bifpn_8xb16-300e_coco.py')
STAT_KEYS = ('median_ms', 'p25_ms', 'p75_ms', 'min_ms', 'max_ms', 'runs')


def model_params(config, **options):
    tool = load_tool(TOOL, 'benchmark_tool')
    cfg = tool.load_config(config, options or None)
    return sum(p.numel() for p in tool.build_model(cfg, None).parameters())


def check_stats(stats, runs):
    assert set(STAT_KEYS) <= set(stats)
    assert stats['runs'] == runs
    assert 0 < stats['min_ms'] <= stats['p25_ms'] <= stats['median_ms'] <= stats['p75_ms'] \
        <= stats['max_ms']


def test_summary_and_sizes():
    tool = load_tool(TOOL, 'benchmark_tool')
    s = tool.summarize([0.004, 0.001, 0.002, 0.003, 0.005])
    assert s['median_ms'] == pytest.approx(3.0)
    assert (s['min_ms'], s['max_ms']) == pytest.approx((1.0, 5.0))
    assert (s['p25_ms'], s['p75_ms']) == pytest.approx((2.0, 4.0))
    assert tool.parse_size('512x768') == (512, 768) and tool.parse_size('64') == (64, 64)
    with pytest.raises(argparse.ArgumentTypeError, match='--input-size'):
        tool.parse_size('0x3')
    calls = []
    times = tool.alternate_runs([lambda: calls.append('a') or 1.0,
                                 lambda: calls.append('b') or 2.0], runs=2, warmup=1)
    assert calls == ['a', 'b'] * 3 and times == [[1.0, 1.0], [2.0, 2.0]]


def test_alternate_runs_pauses_before_every_call(monkeypatch):
    tool = load_tool(TOOL, 'benchmark_tool')
    events = []
    monkeypatch.setattr(tool.time, 'sleep', lambda s: events.append(('sleep', s)))
    tool.alternate_runs([lambda: events.append('a') or 1.0, lambda: events.append('b') or 2.0],
                        runs=1, warmup=1, pause=0.5)
    assert events == [('sleep', 0.5), 'a', ('sleep', 0.5), 'b'] * 2
    events.clear()
    tool.alternate_runs([lambda: events.append('a') or 1.0], runs=2, warmup=0)
    assert events == ['a', 'a']  # no pause by default (training-step timing)


def test_latency_worker_protocol():
    """The reference workers' JSON-lines loop: ready line, new input, timed runs, quit."""
    import io
    worker = load_tool(osp.join(REPO, 'tools', 'analysis_tools', 'latency_worker.py'),
                       'latency_worker')
    made, ran = [], []
    out = io.StringIO()
    stdin = io.StringIO('{"batch": 2}\n{"run": 1}\n{"run": 1}\n{"quit": 1}\n{"run": 1}\n')
    assert worker.serve(dict(params=7, name='ref'), lambda b: made.append(b) or f'x{b}',
                        lambda x: ran.append(x) or 0.25, stdin=stdin, stdout=out) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [dict(ready=1, params=7, name='ref'), dict(batch=2), dict(seconds=0.25),
                     dict(seconds=0.25)]
    assert made == [2] and ran == ['x2', 'x2']  # nothing after quit


@pytest.mark.slow
def test_benchmark_json_fields(tmp_path):
    """RetinaNet/ResNet, Mask R-CNN/SpineNet and EfficientDet (with the effdet comparison and
    BN fusion) in one run of the tool."""
    out = tmp_path / 'bench.json'
    proc = run_tool([TOOL, TINY_CONFIG, MASK_RCNN, EFFDET_D0, '--input-size', '128',
                     '--batch-sizes', '1', '2', '--runs', '1', '--warmup', '0', '--train',
                     '--train-batch', '2', '--fuse-conv-bn', '--compare', '--pause', '0',
                     '--json', str(out)], env=EFFDET_ENV)
    assert 'one multiply-add as one FLOP' in proc.stdout
    data = json.loads(out.read_text())
    assert data['machine']['nproc'] >= 1 and data['machine']['torch'] == torch.__version__
    tiny, mask, d0 = data['results']
    assert tiny['params'] == model_params(TINY_CONFIG)
    assert mask['params'] == model_params(MASK_RCNN)
    assert d0['params'] == model_params(EFFDET_D0)
    # Mask R-CNN keeps the BN after its shared FC and the one after the mask head's transposed
    # conv (only norms after an nn.Conv2d are folded)
    for r, norms_left in ((tiny, 0), (mask, 2), (d0, 0)):
        assert r['input_size'] == [128, 128]
        assert r['flops'] > 0 and r['flops_by_operator']['conv'] > 0.9 * r['flops']
        # FLOPs are below 2 * params * pixels of the input (every weight used once per pixel
        # at most) and above zero: a sanity band that catches unit mistakes (x2, x1e9).
        assert r['flops'] < 2 * r['params'] * 128 * 128
        assert r['settings']['fuse_conv_bn']
        assert r['settings']['norm_layers_after_fusion'] == norms_left
        # outputs unchanged by the fusion (Mask R-CNN's random-init mask logits reach ~500)
        assert r['settings']['fusion_max_rel_diff'] < 1e-5
        assert r is mask or r['settings']['fusion_max_abs_diff'] < 1e-4
        assert set(r['latency']) == {'1', '2'}
        for batch, entry in r['latency'].items():
            for mode in ('network', 'end2end'):
                check_stats(entry[mode], runs=1)
                assert entry[mode]['images_per_s'] == pytest.approx(
                    int(batch) * 1e3 / entry[mode]['median_ms'])
            assert entry['peak_memory_mib'] > 0 and entry['process_peak_rss_mib'] > 100
        check_stats(r['train'], runs=1)
        assert r['train']['batch'] == 2 and r['train']['peak_memory_mib'] > 0
    # RetinaNet + ResNet has no reference; EfficientDet-D0 compares with effdet's
    assert 'no reference' in tiny['compare']['skipped']
    cmp_ = d0['compare']
    assert cmp_['reference'].endswith('tf_efficientdet_d0')
    # effdet with 80 classes has exactly our parameters (tested to match in the parity tests)
    assert cmp_['reference_params'] == d0['params']
    for batch in ('1', '2'):
        c = cmp_['batches'][batch]
        check_stats(c['reference'], runs=1)
        assert c['ratio'] == pytest.approx(c['ours']['median_ms'] / c['reference']['median_ms'])


@pytest.mark.slow
def test_benchmark_tf_spinenet_compare(tmp_path):
    """SpineNet backbone against TF Model Garden's, timed in .venv-tf beside ours."""
    out = tmp_path / 'bench.json'
    run_tool([TOOL, SPINENET_TINY, '--input-size', '128', '--batch-sizes', '1', '--runs', '2',
              '--warmup', '1', '--no-flops', '--no-end2end', '--compare', '--threads', '1',
              '--pause', '0.05', '--json', str(out)])
    r = json.loads(out.read_text())['results'][0]
    assert 'flops' not in r and 'end2end' not in r['latency']['1']
    cmp_ = r['compare']
    assert cmp_['reference'].startswith('TF Model Garden SpineNet-49S')
    assert cmp_['scope'].startswith('backbone')
    # the tiny config narrows SpineNet-49S; TF's is the full one, whose trainable parameters
    # the parity tests hold ours to (README table: 9,089,215)
    assert cmp_['reference_params'] == 9089215
    check_stats(cmp_['batches']['1']['reference'], runs=2)
    check_stats(cmp_['batches']['1']['ours'], runs=2)


@pytest.mark.slow
def test_benchmark_compiled_channels_last_fused(tmp_path):
    """The fastest CPU setting (docs/benchmarks.md): BN folded, NHWC, inductor with freezing."""
    out = tmp_path / 'bench.json'
    proc = run_tool([TOOL, TINY_CONFIG, '--input-size', '96', '--batch-sizes', '1', '--runs', '2',
                     '--warmup', '1', '--no-flops', '--no-end2end', '--fuse-conv-bn',
                     '--channels-last', '--compile', '--pause', '0', '--json', str(out)])
    r = json.loads(out.read_text())['results'][0]
    assert r['settings']['compile'] and r['settings']['channels_last']
    assert r['settings']['norm_layers_after_fusion'] == 0
    assert r['settings']['compile_max_rel_diff'] < 1e-4  # same results as eager
    check_stats(r['latency']['1']['network'], runs=2)
    assert 'fused BN into convs: 0 norm layers left' in proc.stdout


def test_bad_device_is_refused():
    proc = run_tool([TOOL, TINY_CONFIG, '--device', 'tpu'], check=False)
    assert proc.returncode != 0 and "--device='tpu'" in proc.stderr
