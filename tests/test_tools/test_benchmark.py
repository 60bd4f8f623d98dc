"""tools/analysis_tools/benchmark.py (a wrapper of mmdet_spine.analysis.benchmark): runs on
every config family and writes every field.

Timing values are only checked to be positive (no timing assertions). The comparisons are
checked for what they pair: every pair's two sides run in the same mode (``SAME_MODE``)."""
import argparse
import json
import os
import os.path as osp

import pytest
import torch

from helpers import REPO, TINY_CONFIG, run_tool

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark.py')
MASK_RCNN = osp.join(REPO, 'configs', 'spinenet', 'mask-rcnn_spinenet-49s-tiny_8xb8-8e_shapes.py')
SPINENET_TINY = osp.join(REPO, 'configs', 'spinenet',
                         'retinanet_spinenet-49s-tiny_8xb8-12e_shapes.py')
# effdet's worker imports effdet behind the tests' torchvision stand-in (tests/ on its path)
EFFDET_ENV = dict(MMDET_SPINE_EFFDET_PRELUDE='torchvision_standin',
                  PYTHONPATH=os.pathsep.join(p for p in (osp.join(REPO, 'tests'),
                                                         os.environ.get('PYTHONPATH')) if p))
EFFDET_D0 = osp.join(REPO, 'configs', 'efficientdet', 'efficientdet_d0_bifpn_8xb16-300e_coco.py')
STAT_KEYS = ('median_ms', 'p25_ms', 'p75_ms', 'min_ms', 'max_ms', 'runs')


def model_params(config, **options):
    from mmdet_spine.analysis import benchmark as tool
    cfg = tool.load_config(config, options or None)
    return tool.count_parameters(tool.build_inference_model(cfg, None))


def check_stats(stats, runs):
    assert set(STAT_KEYS) <= set(stats)
    assert stats['runs'] == runs
    assert 0 < stats['min_ms'] <= stats['p25_ms'] <= stats['median_ms'] <= stats['p75_ms'] \
        <= stats['max_ms']


def check_pairs(compare, runs, modes, batches=(1,)):
    """``compare['pairs']``: one per batch and reference run, with ``modes`` the (ours,
    reference) modes of each batch's pairs in order; both sides' stats; ratio of medians."""
    from mmdet_spine.analysis import benchmark as tool
    pairs = compare['pairs']
    assert [p['batch'] for p in pairs] == [b for b in batches for _ in modes]
    assert [(p['ours']['mode'], p['reference']['mode']) for p in pairs] == list(modes) * len(
        batches)
    for p in pairs:
        assert (p['ours']['mode'], p['reference']['mode']) in tool.SAME_MODE
        assert p['reference']['name'] == compare['reference']
        check_stats(p['ours'], runs)
        check_stats(p['reference'], runs)
        assert p['ratio'] == pytest.approx(p['ours']['median_ms'] / p['reference']['median_ms'])
    return pairs


def cpuinfo_flags():
    with open('/proc/cpuinfo') as f:
        for line in f:
            key, _, value = line.partition(':')
            if key.strip() in ('flags', 'Features'):
                return set(value.split())
    return set()


def check_machine(machine, stdout):
    """The ISA fields agree with /proc/cpuinfo and torch, and the header line shows them."""
    from mmdet_spine.analysis import benchmark as tool
    flags = cpuinfo_flags()
    assert machine['cpu_flags'] == [f for f in tool.ISA_FLAGS if f in flags]
    assert machine['cpu_capability'] == torch.backends.cpu.get_cpu_capability()
    assert machine['isa'] == tool.isa_summary(machine['cpu_flags'])
    assert ('AVX-512' in machine['isa']) == ('avx512f' in flags)
    assert machine['isa'].startswith('AVX2') == ('avx2' in flags and 'avx512f' not in flags)
    assert f'ISA {machine["isa"]} (torch capability {machine["cpu_capability"]}' in stdout


def test_summary_and_sizes():
    from mmdet_spine.analysis import benchmark as tool
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
    from mmdet_spine.analysis import benchmark as tool
    events = []
    monkeypatch.setattr(tool.time, 'sleep', lambda s: events.append(('sleep', s)))
    tool.alternate_runs([lambda: events.append('a') or 1.0, lambda: events.append('b') or 2.0],
                        runs=1, warmup=1, pause=0.5)
    assert events == [('sleep', 0.5), 'a', ('sleep', 0.5), 'b'] * 2
    events.clear()
    tool.alternate_runs([lambda: events.append('a') or 1.0], runs=2, warmup=0)
    assert events == ['a', 'a']  # no pause by default (training-step timing)


def test_latency_worker_protocol():
    """The reference workers' JSON-lines loop: ready line, new input (with targets), timed
    runs by name (``{"run": 1}``: the first), quit."""
    import io
    from mmdet_spine.analysis.references import latency_worker as worker
    made, ran = [], []
    out = io.StringIO()
    targets = [dict(boxes_xyxy=[[1, 2, 3, 4]], labels=[0])]
    stdin = io.StringIO('{"batch": 2}\n{"run": 1}\n{"run": "xla"}\n'
                        + json.dumps(dict(batch=1, targets=targets))
                        + '\n{"run": "graph"}\n{"quit": 1}\n{"run": 1}\n')
    runs = dict(graph=lambda x: ran.append(('graph', x)) or 0.25,
                xla=lambda x: ran.append(('xla', x)) or 0.5)
    info = dict(graph=dict(mode='tf.function'), xla=dict(mode='tf.jit_compile'))
    assert worker.serve(dict(params=7, name='ref', runs=info),
                        lambda b, t=None: made.append((b, t)) or f'x{b}', runs,
                        stdin=stdin, stdout=out) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [dict(ready=1, params=7, name='ref', runs=info), dict(batch=2),
                     dict(seconds=0.25), dict(seconds=0.5), dict(batch=1), dict(seconds=0.25)]
    assert made == [(2, None), (1, targets)]
    assert ran == [('graph', 'x2'), ('xla', 'x2'), ('graph', 'x1')]  # nothing after quit


def test_pairs_must_be_same_mode():
    """A pair is built only from two sides in the same mode; a mismatched one is refused."""
    from mmdet_spine.analysis import benchmark as tool
    assert tool.SAME_MODE == {('eager', 'eager'), ('compiled', 'compiled'),
                              ('eager', 'tf.function'), ('compiled', 'tf.function'),
                              ('compiled', 'tf.jit_compile')}
    ours = dict(mode='eager', part='network', options=dict(fuse_conv_bn=True))
    ref = dict(name='effdet', run='eager', mode='eager', options={})
    pair = tool.make_pair(4, ours, [0.004, 0.002], ref, [0.001, 0.003])
    assert pair['batch'] == 4 and pair['ratio'] == pytest.approx(1.5)  # medians 3 ms / 2 ms
    assert pair['ours']['options'] == dict(fuse_conv_bn=True) and pair['ours']['runs'] == 2
    assert pair['reference']['name'] == 'effdet' and pair['reference']['median_ms'] == 2.0
    line = tool.pair_line(pair, 'network')
    assert 'ours eager (fuse_conv_bn) 3.0 ms vs effdet [eager] 2.0 ms: ratio 1.500' in line
    for ours_mode, ref_mode in (('compiled', 'eager'), ('eager', 'compiled'),
                                ('eager', 'tf.jit_compile'), ('eager', 'jit')):
        with pytest.raises(ValueError, match=f'ours={ours_mode!r} vs reference={ref_mode!r}'):
            tool.make_pair(1, dict(ours, mode=ours_mode), [1.0], dict(ref, mode=ref_mode), [1.0])


def test_isa_summary_and_cpu_flags(tmp_path):
    """ISA words from /proc/cpuinfo flags, and the fields of this machine's CPU."""
    from mmdet_spine.analysis import benchmark as tool
    assert tool.isa_summary(['avx', 'avx2', 'fma']) == 'AVX2+FMA'
    assert tool.isa_summary(['avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16',
                             'amx_tile', 'amx_bf16']) == 'AVX-512 (+VNNI, +BF16, +AMX)'
    assert tool.isa_summary(['avx2', 'avx512f']) == 'AVX-512'
    assert tool.isa_summary(['asimd'], 'aarch64') == 'NEON'
    assert tool.isa_summary([], 'riscv64') == 'riscv64'
    fake = tmp_path / 'cpuinfo'
    fake.write_text('processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512_vnni '
                    'amx_int8\n\nprocessor\t: 1\nflags\t\t: fpu\n')
    isa = tool.cpu_isa(str(fake))
    assert isa['cpu_flags'] == ['avx', 'avx2', 'fma', 'avx512f', 'avx512_vnni', 'amx_int8']
    assert isa['isa'] == 'AVX-512 (+VNNI)'
    assert isa['cpu_capability'] == torch.backends.cpu.get_cpu_capability()
    here = tool.cpu_isa()
    assert here['cpu_flags'] == [f for f in tool.ISA_FLAGS if f in cpuinfo_flags()]


@pytest.mark.slow
def test_benchmark_json_fields(tmp_path):
    """RetinaNet/ResNet, Mask R-CNN/SpineNet and EfficientDet (with the effdet comparisons,
    inference and training step, and BN fusion) in one run of the tool."""
    out = tmp_path / 'bench.json'
    proc = run_tool([TOOL, TINY_CONFIG, MASK_RCNN, EFFDET_D0, '--input-size', '128',
                     '--batch-sizes', '1', '2', '--runs', '1', '--warmup', '0', '--train',
                     '--train-batch', '2', '--fuse-conv-bn', '--compare', '--pause', '0',
                     '--json', str(out)], env=EFFDET_ENV)
    assert 'one multiply-add as one FLOP' in proc.stdout
    data = json.loads(out.read_text())
    assert data['machine']['nproc'] >= 1 and data['machine']['torch'] == torch.__version__
    check_machine(data['machine'], proc.stdout)
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
        assert r['train']['mode'] == 'eager'
    # RetinaNet + ResNet has no reference; Mask R-CNN has no reference training step;
    # EfficientDet-D0 compares with effdet's, eager with eager: effdet as shipped
    assert 'no reference' in tiny['compare']['skipped']
    assert 'no reference training step' in tiny['train']['compare']['skipped']
    assert 'no reference training step' in mask['train']['compare']['skipped']
    cmp_ = d0['compare']
    assert cmp_['reference'].endswith('tf_efficientdet_d0')
    # effdet with 80 classes has exactly our parameters (tested to match in the parity tests)
    assert cmp_['reference_params'] == d0['params']
    for pair in check_pairs(cmp_, 1, [('eager', 'eager')], batches=(1, 2)):
        assert pair['ours']['options'] == dict(fuse_conv_bn=True, channels_last=False,
                                               inductor_freezing=False)
        assert pair['reference']['options'] == dict(channels_last=False,
                                                    inductor_freezing=False)
    assert proc.stdout.count('compare network batch ') == 2
    # the training step against effdet's DetBenchTrain, its labeler inside the step
    train = d0['train']['compare']
    assert train['reference'].endswith('tf_efficientdet_d0')
    assert train['reference_params'] == d0['params']
    (pair,) = check_pairs(train, 1, [('eager', 'eager')], batches=(2,))
    assert pair['reference']['labeler_in_step'] is True
    assert 'DetBenchTrain' in pair['reference']['scope'] and 'DetBenchTrain' in train['scope']
    assert pair['ours']['options']['sgd'] == pair['reference']['options']['sgd']
    assert 'compare train step batch 2: ours eager' in proc.stdout


@pytest.mark.slow
def test_benchmark_tf_spinenet_compare(tmp_path):
    """SpineNet backbone against TF Model Garden's (eager: against ``tf.function``) and the
    RetinaNet training step against TF's ``RetinaNetTask``, timed in .venv-tf beside ours."""
    out = tmp_path / 'bench.json'
    proc = run_tool([TOOL, SPINENET_TINY, '--input-size', '128', '--batch-sizes', '1',
                     '--runs', '2', '--warmup', '1', '--no-flops', '--no-end2end', '--compare',
                     '--train', '--train-batch', '2', '--threads', '1', '--pause', '0.05',
                     '--json', str(out)])
    r = json.loads(out.read_text())['results'][0]
    assert 'flops' not in r and 'end2end' not in r['latency']['1']
    cmp_ = r['compare']
    assert cmp_['reference'].startswith('TF Model Garden SpineNet-49S')
    assert cmp_['scope'].startswith('backbone')
    # the tiny config narrows SpineNet-49S; TF's is the full one, whose trainable parameters
    # the parity tests hold ours to (README table: 9,089,215)
    assert cmp_['reference_params'] == 9089215
    (pair,) = check_pairs(cmp_, 2, [('eager', 'tf.function')])
    assert pair['ours']['part'] == 'backbone' and pair['reference']['run'] == 'tf.function'
    assert pair['reference']['options'] == dict(training=False)
    # training step: TF's RetinaNetTask, with its labeler in the step and on precomputed
    # targets, both tf.function; ours eager
    train = r['train']['compare']
    assert train['reference'].startswith('TF Model Garden RetinaNet-SpineNet-49S RetinaNetTask')
    with_labeler, precomputed = check_pairs(train, 2, [('eager', 'tf.function')] * 2,
                                            batches=(2,))
    assert (with_labeler['reference']['run'], with_labeler['reference']['labeler_in_step']) == \
        ('with_labeler', True)
    assert (precomputed['reference']['run'], precomputed['reference']['labeler_in_step']) == \
        ('precomputed', False)
    # 3 classes + TF's background logit; TF's head is the config's (2 convs of 64 filters)
    assert with_labeler['reference']['options']['num_classes_tf'] == 4
    # the full SpineNet-49S backbone (128-channel endpoints) + the head: per tower (class,
    # box) a 3x3 conv 128 -> 64 and one 64 -> 64, shared by the levels, a BN per level after
    # each, and the 3x3 output conv: 3 (square) anchors x 4 classes, 3 anchors x 4 deltas
    tower = (9 * 128 * 64 + 64) + (9 * 64 * 64 + 64) + 2 * 5 * 2 * 64
    assert train['reference_params'] == 9089215 + 2 * tower + 2 * (9 * 64 * 12 + 12)
    assert 'labeler in step' in proc.stdout and 'targets precomputed' in proc.stdout


@pytest.mark.slow
def test_benchmark_compiled_channels_last_fused(tmp_path):
    """The fastest CPU setting (docs/benchmarks.md): BN folded, NHWC, inductor with freezing;
    compared with references in the same mode: effdet compiled alike (channels-last), TF
    SpineNet with ``tf.function`` and with XLA."""
    out = tmp_path / 'bench.json'
    proc = run_tool([TOOL, SPINENET_TINY, EFFDET_D0, '--input-size', '128', '--batch-sizes',
                     '1', '--runs', '1', '--warmup', '0', '--no-flops', '--no-end2end',
                     '--fuse-conv-bn', '--channels-last', '--compile', '--compare',
                     '--threads', '1', '--pause', '0', '--json', str(out)], env=EFFDET_ENV)
    spine, d0 = json.loads(out.read_text())['results']
    for r in (spine, d0):
        assert r['settings']['compile'] and r['settings']['channels_last']
        assert r['settings']['norm_layers_after_fusion'] == 0
        assert r['settings']['compile_max_rel_diff'] < 1e-4  # same results as eager
        check_stats(r['latency']['1']['network'], runs=1)
    assert proc.stdout.count('fused BN into convs: 0 norm layers left') == 2
    ours = dict(fuse_conv_bn=True, channels_last=True, inductor_freezing=True)
    graph, xla = check_pairs(spine['compare'], 1, [('compiled', 'tf.function'),
                                                   ('compiled', 'tf.jit_compile')])
    assert graph['ours'] == xla['ours']  # one timing of ours, paired twice
    assert graph['ours']['options'] == ours and graph['ours']['part'] == 'backbone'
    assert xla['reference']['options'] == dict(jit_compile=True, training=False)
    (pair,) = check_pairs(d0['compare'], 1, [('compiled', 'compiled')])
    assert pair['ours']['options'] == ours and pair['ours']['part'] == 'network'
    assert pair['reference']['options'] == dict(channels_last=True, inductor_freezing=True)
    assert proc.stdout.count('compare backbone batch 1: ours compiled') == 2
    assert 'compare network batch 1: ours compiled' in proc.stdout


def test_benchmark_train_only(tmp_path):
    """``--train-only`` times the training step and nothing else (no inference, no pairs
    where there is no reference training step)."""
    out = tmp_path / 'bench.json'
    proc = run_tool([TOOL, TINY_CONFIG, '--input-size', '64', '--train-only', '--train-batch',
                     '2', '--runs', '2', '--warmup', '0', '--no-flops', '--compare', '--pause',
                     '0', '--json', str(out)])
    r = json.loads(out.read_text())['results'][0]
    assert 'latency' not in r and 'compare' not in r
    check_stats(r['train'], runs=2)
    assert r['train']['batch'] == 2 and r['train']['mode'] == 'eager'
    assert 'no reference training step' in r['train']['compare']['skipped']
    assert f"| tiny_retinanet_shapes.py | 64x64 | {r['params'] / 1e6:.2f} | - | 2 | - | - |" \
        in proc.stdout


def test_bad_device_is_refused():
    proc = run_tool([TOOL, TINY_CONFIG, '--device', 'tpu'], check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and lines[-1].startswith("error: --device='tpu'"), proc.stderr
    assert 'Traceback' not in proc.stderr
