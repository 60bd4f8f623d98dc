"""SpineNet against TF Model Garden: same weights, same outputs (max abs diff <= 1e-4).

TF runs in its own environment, ``<repo>/.venv-tf`` (TensorFlow never enters mmdet_spine's
import path): ``tests/reference/tf_spinenet_export.py`` builds TF SpineNet with random
weights and BN statistics and writes its variables and P-level outputs to an ``.npz``;
``tools/model_converters/spinenet_tf2mmdet.py`` converts them; our SpineNet built with the
TF-compatible options must reproduce the outputs. The converter's checkpoint path (TF
checkpoint -> .pth in one command) is exercised on a checkpoint the export writes.

No skips: without ``.venv-tf`` these tests fail and say how to create it.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import REPO, TF_PYTHON, load_tool
from mmdet_spine.models.backbones.spinenet import (SPINENET_ARCH_SETTINGS, SPINENET_BLOCK_SPECS,
                                                   SPINENET_FILTER_SIZES)

EXPORT = osp.join(REPO, 'tests', 'reference', 'tf_spinenet_export.py')
CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'spinenet_tf2mmdet.py')
TOLERANCE = 1e-4

TF_VENV_HELP = f"""TF reference environment missing: {TF_PYTHON} does not exist.
Create it (about 3 min, 2.8 GB; see requirements/tf_reference.txt):
    python3 -m venv .venv-tf
    .venv-tf/bin/python -m pip install -r requirements/tf_reference.txt
    .venv-tf/bin/python -m pip install --no-deps tf-models-official==2.20.0"""

# name -> export options (tests/reference/tf_spinenet_export.py flags, without dashes)
CASES = {
    '49S': dict(arch='49S', size=128),
    '49': dict(arch='49', size=256),
    '96': dict(arch='96', size=128),  # block repeats (2 blocks per node)
    '49-min2': dict(arch='49', min_level=2, size=128),  # the level-2 output block
    '49S-legacy-weighted-swish': dict(arch='49S', legacy=True, weighted_fusion=True,
                                      activation='swish', size=128),
}
CKPT_CASE = '49S'
#: Cases also saved as object-based TF checkpoints (under root/ckpt-<case>/).
CKPT_CASES = (CKPT_CASE, '49-min2')


def load_converter():
    from mmdet_spine.converters import tf_model_garden
    return tf_model_garden


conv = load_converter()


@pytest.fixture(scope='module')
def tf_reference(tmp_path_factory):
    """Run the TF export once for all cases; return {case: npz path} and the checkpoint, or
    {'error': why} (each test then fails with it, see :func:`reference`)."""
    if not osp.exists(TF_PYTHON):
        return dict(error=TF_VENV_HELP)
    root = tmp_path_factory.mktemp('tf_spinenet')
    cases = []
    for name, opts in CASES.items():
        case = dict(opts, seed=len(cases), out=str(root / f'{name}.npz'))
        if name == CKPT_CASE:
            case['ckpt_out'] = str(root / 'ckpt' / 'ckpt-1')
        elif name in CKPT_CASES:
            case['ckpt_out'] = str(root / f'ckpt-{name}' / 'ckpt-1')
        cases.append(case)
    with open(root / 'cases.json', 'w') as f:
        json.dump(cases, f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='',
               OMP_NUM_THREADS='1')
    proc = subprocess.run([TF_PYTHON, EXPORT, '--cases', str(root / 'cases.json')], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return dict(error=f'TF export failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
                          f'{proc.stderr[-6000:]}')
    return dict(npz={name: str(root / f'{name}.npz') for name in CASES},
                ckpt=str(root / 'ckpt' / 'ckpt-1'), root=root)


def reference(tf_reference):
    """The export results, or a test failure (not an error, not a skip) saying what to do."""
    if 'error' in tf_reference:
        pytest.fail(tf_reference['error'], pytrace=False)
    return tf_reference


def build_ours(meta, **overrides):
    from mmdet_spine.models.backbones import SpineNet

    kwargs = conv.model_kwargs(meta['arch'], meta['min_level'], meta['max_level'],
                               meta['weighted_fusion'], meta['activation'])
    kwargs.update(overrides)
    return SpineNet(**kwargs).eval()


def max_abs_diffs(model, arrays, meta):
    x = torch.from_numpy(arrays['__input__']).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        outs = model(x)
    levels = list(range(meta['min_level'], meta['max_level'] + 1))
    assert len(outs) == len(levels)
    diffs = {}
    for level, out in zip(levels, outs):
        ref = arrays[f'__out_{level}__']
        got = out.permute(0, 2, 3, 1).numpy()
        assert got.shape == ref.shape, (level, got.shape, ref.shape)
        diffs[level] = float(np.abs(got - ref).max())
    return diffs


@pytest.mark.slow
@pytest.mark.parametrize('case', list(CASES))
def test_spinenet_matches_tf(tf_reference, case):
    arrays, meta = conv.load_npz(reference(tf_reference)['npz'][case])
    state = conv.convert_arrays(arrays, meta['arch'], meta['min_level'], meta['max_level'],
                                meta['legacy'], meta['weighted_fusion'])
    model = build_ours(meta)
    model.load_state_dict(state, strict=True)
    n_params = sum(p.numel() for p in model.parameters())
    fusion = sum(p.numel() for n, p in model.named_parameters() if n.endswith('fusion.weight'))
    assert n_params - fusion == meta['trainable_params']  # TF2 keeps fusion scalars untracked
    diffs = max_abs_diffs(model, arrays, meta)
    print(f'SpineNet-{case} max abs diff per level: {diffs}')
    assert max(diffs.values()) <= TOLERANCE, diffs


@pytest.mark.slow
@pytest.mark.parametrize('case', ['49S', '49S-legacy-weighted-swish'])
def test_architecture_tables_match_tf(tf_reference, case):
    """Our arch table, block specs and widths are TF's (also for archs too big to run here)."""
    _, meta = conv.load_npz(reference(tf_reference)['npz'][case])
    tables = meta['tf_tables']
    assert tables['scaling_map'] == {k: v for k, v in SPINENET_ARCH_SETTINGS.items()
                                     if k in tables['scaling_map']}
    if not meta['legacy']:
        assert set(tables['scaling_map']) == set(SPINENET_ARCH_SETTINGS)
    ours = [[s.level, s.block_fn, list(s.input_offsets), s.is_output]
            for s in SPINENET_BLOCK_SPECS]
    assert tables['block_specs'] == ours[:len(tables['block_specs'])]
    assert len(tables['block_specs']) == (conv.LEGACY_NUM_SPECS if meta['legacy'] else len(ours))
    assert tables['filter_size_map'] == {str(k): v for k, v in SPINENET_FILTER_SIZES.items()}


@pytest.mark.slow
def test_pytorch_padding_is_not_tf_parity(tf_reference):
    """Control: the same weights with PyTorch's symmetric padding miss TF's outputs, so the
    parity above really depends on the TF-'SAME' mode."""
    arrays, meta = conv.load_npz(reference(tf_reference)['npz']['49S'])
    model = build_ours(meta, padding_mode='pytorch')
    model.load_state_dict(conv.convert_arrays(arrays, '49S'), strict=True)
    assert max(max_abs_diffs(model, arrays, meta).values()) > 1e-2


@pytest.mark.slow
def test_checkpoint_converts_in_one_command(tf_reference, tmp_path):
    """TF checkpoint -> .pth through the converter's CLI (TF stage in .venv-tf)."""
    out = str(tmp_path / 'spinenet49S_tf.pth')
    ckpt_dir = osp.dirname(reference(tf_reference)['ckpt'])
    proc = subprocess.run(
        [sys.executable, CONVERTER, ckpt_dir, out, '--arch', '49S', '--tf-python', TF_PYTHON], cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES=''))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    state = torch.load(out, map_location='cpu', weights_only=True)['state_dict']
    arrays, meta = conv.load_npz(reference(tf_reference)['npz'][CKPT_CASE])
    expected = conv.convert_arrays(arrays, '49S')
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    model = build_ours(meta)
    model.load_state_dict(state, strict=True)
    assert max(max_abs_diffs(model, arrays, meta).values()) <= TOLERANCE


@pytest.mark.slow
def test_weights_of_another_arch_are_refused(tf_reference):
    arrays, _ = conv.load_npz(reference(tf_reference)['npz']['49S'])
    with pytest.raises(ValueError, match='wrong --arch'):
        conv.convert_arrays(arrays, '49')


@pytest.mark.parametrize('arch', list(SPINENET_ARCH_SETTINGS))
@pytest.mark.parametrize('min_level', [2, 3])
def test_tf_layout_covers_our_model(arch, min_level):
    """Without TF: every conv/BN TF creates maps onto ours with the same shape, and together
    they cover our whole state dict (all archs, including those too big for the TF test)."""
    from mmdet_spine.models.backbones import SpineNet

    with torch.device('meta'):
        model = SpineNet(**conv.model_kwargs(arch, min_level=min_level))
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    mapped = set()
    for part, _, _, shape in conv.tf_layout(arch, min_level=min_level):
        c, bn = conv.ours_conv_bn(part)
        if f'{c}.weight' not in ours:
            # TF builds the level-2 output block even when min_level is 3; we prune it
            assert min_level == 3 and part.startswith('blocks.15.'), part
            continue
        h, w, cin, cout = shape
        assert ours[f'{c}.weight'] == (cout, cin, h, w), part
        mapped.add(f'{c}.weight')
        for suffix in ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'):
            mapped.add(f'{bn}.{suffix}')
            assert f'{bn}.{suffix}' in ours, (part, bn)
    assert mapped == set(ours), sorted(set(ours) - mapped)[:5]


def test_fusion_input_counts_match_ours():
    from mmdet_spine.models.backbones import SpineNet

    for legacy in (False, True):
        counts = conv.fusion_inputs('49', legacy)
        with torch.device('meta'):
            model = SpineNet(**conv.model_kwargs('49', min_level=2 if not legacy else 3,
                                                 weighted_fusion=True))
        for i, n in counts.items():
            if str(i + 1) in model.blocks:
                assert model.blocks[str(i + 1)].fusion.num_inputs == n, i


def _error_lines(stderr):
    """stderr without Python warnings (``...Warning: ...`` and the source line after it)."""
    lines, skip = [], False
    for line in stderr.splitlines():
        if skip or not line.strip():
            skip = False
            continue
        if 'Warning: ' in line:
            skip = True
            continue
        lines.append(line)
    return lines


@pytest.mark.slow
@pytest.mark.parametrize('case,flags,expected', [
    ('49S', ['--arch', '49'], 'probably a wrong --arch'),  # widths differ, same layers
    ('49-min2', ['--arch', '49'], 'a P2 checkpoint needs --min-level 2'),
    ('49S', ['--arch', '49XS', '--family', 'mobile'], 'use --family spinenet'),
])
def test_checkpoint_that_does_not_fit_the_flags_is_one_line(tf_reference, tmp_path, case,
                                                            flags, expected):
    """A wrong --arch / missing --min-level 2 / wrong --family: exit 2 and one line naming the
    flag and what the checkpoint holds, not TF's restore errors."""
    root = reference(tf_reference)['root']
    ckpt_dir = root / ('ckpt' if case == CKPT_CASE else f'ckpt-{case}')
    proc = subprocess.run(
        [sys.executable, CONVERTER, str(ckpt_dir), str(tmp_path / 'out.pth'), *flags,
         '--tf-python', TF_PYTHON], cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES=''))
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr[-3000:]
    assert expected in lines[0] and 'stem kernel' in lines[0], lines[0]
    assert not (tmp_path / 'out.pth').exists()
