"""SpineNet-Mobile and its RetinaNet against TF Model Garden: same weights, same outputs.

``tests/reference/tf_spinenet_mobile_export.py`` (in ``.venv-tf``, ONE process for the whole
module) builds TF's ``SpineNetMobile`` 49S and 49 (hard_swish, TF's recipe for them) and TF's
mobile ``RetinaNetModel`` with SpineNetMobile-49XS (swish) and the separable-conv
``RetinaNetHead`` (4 x 24, 91 classes), all with random weights and BN statistics in inference
mode, and writes their variables and outputs, plus a trainer-style checkpoint that the
converter's TF stage reads back. ``tools/model_converters/spinenet_tf2mmdet.py
--family mobile`` converts them; ours must give:

- P3-P7 of SpineNetMobile within 1e-4 for 49XS, 49S and 49 (swish and hard swish);
- the raw class logits (TF's 80 COCO columns, anchors reordered) and box deltas of
  ``RetinaSepBNActHead(separable=True)``, built from our 49XS mobile config, within 1e-4;
- TF's trainable parameter count for the whole RetinaNet (91 classes);
- the same state dict from the checkpoint as from the exported variables.

No skips: without ``.venv-tf`` these tests fail and say how to create it.
"""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from helpers import REPO, TF_PYTHON, load_tool

EXPORT = osp.join(REPO, 'tests', 'reference', 'tf_spinenet_mobile_export.py')
CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'spinenet_tf2mmdet.py')
CONFIG = osp.join(REPO, 'configs', 'spinenet',
                  'retinanet_spinenet-mobile-49xs_32xb8-lsj-500e_coco-256.py')
TOLERANCE = 1e-4
SIZE = 128
LEVELS = range(3, 8)
BACKBONES = {'49S': 'hard_swish', '49': 'hard_swish'}
RETINANET = ('49XS', 'swish')


def load_converter():
    from mmdet_spine.converters import tf_model_garden
    return tf_model_garden


conv = load_converter()


@pytest.fixture(scope='module')
def tf_reference(tmp_path_factory):
    """Run the TF export once; {'dir': path} or {'error': why}."""
    if not osp.exists(TF_PYTHON):
        return dict(error=f'TF reference environment missing: {TF_PYTHON} does not exist; '
                          'see tests/test_models/test_spinenet_tf_parity.py for how to create it')
    root = str(tmp_path_factory.mktemp('tf_spinenet_mobile'))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='',
               OMP_NUM_THREADS='1')
    cmd = [TF_PYTHON, EXPORT, '--out-dir', root, '--size', str(SIZE),
           '--retinanet', ':'.join(RETINANET), '--backbones']
    cmd += [f'{arch}:{act}' for arch, act in BACKBONES.items()]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return dict(error=f'TF export failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
                          f'{proc.stderr[-6000:]}')
    return dict(dir=root)


def reference(tf_reference, name):
    if 'error' in tf_reference:
        pytest.fail(tf_reference['error'], pytrace=False)
    return osp.join(tf_reference['dir'], name)


def npz_of(tf_reference, arch):
    name = f'mobile-{arch}-retinanet.npz' if arch == RETINANET[0] else f'mobile-{arch}.npz'
    return reference(tf_reference, name)


def build_backbone(arch, activation, padding_mode='tf_same'):
    from mmdet_spine.models.backbones import SpineNetMobile

    kwargs = conv.model_kwargs(arch, activation=activation, family='mobile')
    kwargs['padding_mode'] = padding_mode
    return SpineNetMobile(**kwargs).eval()


def max_diffs(outs, arrays):
    return [float(np.abs(o.permute(0, 2, 3, 1).numpy() - arrays[f'__out_{lv}__']).max())
            for lv, o in zip(LEVELS, outs)]


def run(model, arrays):
    x = torch.from_numpy(arrays['__input__']).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        return model(x)


@pytest.mark.slow
@pytest.mark.parametrize('arch', [RETINANET[0], *BACKBONES])
def test_spinenet_mobile_matches_tf(tf_reference, arch):
    path = npz_of(tf_reference, arch)
    arrays, meta = conv.load_npz(path)
    state = conv.convert_tf_checkpoint(path, arch=arch, family='mobile', with_head=False)
    model = build_backbone(arch, meta['activation'])
    model.load_state_dict(state, strict=True)
    outs = run(model, arrays)
    diffs = max_diffs(outs, arrays)
    print(f'SpineNetMobile-{arch} ({meta["activation"]}) max abs diff P3-P7: {diffs}')
    assert max(diffs) <= TOLERANCE, diffs
    # the outputs carry signal (a constant or zero output would match trivially)
    assert min(float(np.std(arrays[f'__out_{lv}__'])) for lv in LEVELS) > 0.01
    if arch in BACKBONES:
        assert meta['trainable_params'] == sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_mobile_tables_match_tf(tf_reference):
    from mmdet_spine.models.backbones.spinenet_mobile import (SPINENET_MOBILE_ARCH_SETTINGS,
                                                              SPINENET_MOBILE_BLOCK_SPECS,
                                                              SPINENET_MOBILE_FILTER_SIZES)
    tables = conv.load_npz(npz_of(tf_reference, '49S'))[1]['tf_tables']
    assert tables['scaling_map'] == SPINENET_MOBILE_ARCH_SETTINGS
    assert tables['block_specs'] == [[s.level, s.block_fn, list(s.input_offsets), s.is_output]
                                     for s in SPINENET_MOBILE_BLOCK_SPECS]
    assert {int(k): v for k, v in tables['filter_size_map'].items()} == \
        SPINENET_MOBILE_FILTER_SIZES


@pytest.mark.slow
def test_pytorch_padding_is_not_tf_parity(tf_reference):
    """Control: symmetric padding of the stride-2 convs is measurably off TF."""
    path = npz_of(tf_reference, '49S')
    arrays, meta = conv.load_npz(path)
    model = build_backbone('49S', meta['activation'], padding_mode='pytorch')
    model.load_state_dict(conv.convert_tf_checkpoint(path, arch='49S', family='mobile'))
    assert max(max_diffs(run(model, arrays), arrays)) > 100 * TOLERANCE


def build_retinanet(num_classes=None):
    """Our 49XS mobile RetinaNet config, BN for SyncBN, TF 'SAME' padding."""
    import mmdet_spine  # noqa: F401
    from mmdet.registry import MODELS

    init_default_scope('mmdet')
    cfg = Config.fromfile(CONFIG)
    assert cfg.model.bbox_head.separable is True
    bn = dict(type='BN', momentum=0.01, eps=1e-3, requires_grad=True)
    cfg.model.backbone.update(norm_cfg=bn, padding_mode='tf_same')
    cfg.model.bbox_head.update(norm_cfg=bn)
    if num_classes is not None:
        cfg.model.bbox_head.num_classes = num_classes
    return MODELS.build(cfg.model).eval()


@pytest.fixture(scope='module')
def retinanet(tf_reference):
    path = npz_of(tf_reference, RETINANET[0])
    arrays, meta = conv.load_npz(path)
    state = conv.convert_tf_checkpoint(path, arch=RETINANET[0], family='mobile')
    model = build_retinanet()
    model.load_state_dict(state, strict=True)
    return arrays, meta, state, model


def tf_in_our_order(arrays, level, perm, keep):
    c = arrays[f'__cls_{level}__']
    b = arrays[f'__box_{level}__']
    c = c.reshape(*c.shape[:3], 9, -1)[:, :, :, perm][..., keep]
    b = b.reshape(*b.shape[:3], 9, 4)[:, :, :, perm][..., [1, 0, 3, 2]]
    return c, b


def nhwac(t, last):
    b, _, h, w = t.shape
    return t.permute(0, 2, 3, 1).reshape(b, h, w, -1, last).numpy()


@pytest.mark.slow
def test_separable_retinanet_head_matches_tf(retinanet):
    arrays, meta, _, model = retinanet
    assert meta['separable'] and meta['num_filters'] == 24
    x = torch.from_numpy(arrays['__input__']).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        cls_scores, bbox_preds = model.bbox_head(model.backbone(x))
    perm = conv.anchor_permutation(3, [0.5, 1.0, 2.0], [0.5, 1.0, 2.0], True)
    keep = list(conv.COCO80_IDS)
    diffs = {}
    for level, c, b in zip(LEVELS, cls_scores, bbox_preds):
        tf_c, tf_b = tf_in_our_order(arrays, level, perm, keep)
        diffs[level] = (float(np.abs(nhwac(c, 80) - tf_c).max()),
                        float(np.abs(nhwac(b, 4) - tf_b).max()))
    print(f'mobile RetinaNet-49XS separable head max abs diff per level (cls, box): {diffs}')
    assert max(max(d) for d in diffs.values()) <= TOLERANCE, diffs
    # control: TF's anchor order taken as ours is far off
    wrong_c, _ = tf_in_our_order(arrays, 3, list(range(9)), keep)
    assert np.abs(nhwac(cls_scores[0], 80) - wrong_c).max() > 100 * TOLERANCE


@pytest.mark.slow
def test_mobile_retinanet_parameter_count_matches_tf(retinanet):
    arrays, meta, _, _ = retinanet
    state = conv.convert_npz_arrays(arrays, meta, RETINANET[0], family='mobile',
                                    head_options=dict(classes='all'))
    model = build_retinanet(num_classes=91)
    model.load_state_dict(state, strict=True)
    ours = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert ours == meta['trainable_params'] == 872_711
    assert sum(p.numel() for p in model.backbone.parameters()) == meta['backbone_params']


@pytest.mark.slow
def test_checkpoint_read_back_converts_to_the_same_state(tf_reference, retinanet, tmp_path):
    """TF stage on the trainer-style checkpoint (run in the export process), then the CLI's
    torch stage: the same tensors as converting the exported variables."""
    _, _, expected, _ = retinanet
    out = str(tmp_path / 'mobile49XS.pth')
    tool = load_tool(CONVERTER, 'spinenet_tf2mmdet')
    tool.main([reference(tf_reference, 'ckpt-readback.npz'), out, '--arch', RETINANET[0],
               '--family', 'mobile'])
    state = torch.load(out, map_location='cpu', weights_only=True)['state_dict']
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


@pytest.mark.slow
def test_mobile_arrays_refused_by_the_wrong_family_or_arch(retinanet):
    arrays, meta, _, _ = retinanet
    with pytest.raises(ValueError, match="family='mobile'"):
        conv.convert_npz_arrays(arrays, meta, RETINANET[0], family='spinenet')
    with pytest.raises(ValueError, match="arch='49XS'"):
        conv.convert_npz_arrays(arrays, meta, '49S', family='mobile')
    with pytest.raises(ValueError, match='not fit SpineNetMobile'):
        conv.convert_npz_arrays(arrays, {}, '49S', family='mobile', with_head=False)


def test_family_and_arch_errors():
    with pytest.raises(ValueError, match="family='bogus'; valid choices: spinenet, mobile"):
        conv.convert_npz_arrays({}, {}, '49', family='bogus')
    with pytest.raises(ValueError, match="arch='96' is not a SpineNetMobile architecture; "
                                         'valid choices: 49, 49S, 49XS'):
        conv.tf_mobile_layout('96')


@pytest.mark.parametrize('arch', ['49XS', '49S', '49'])
def test_tf_mobile_layout_covers_our_model(arch):
    """Without TF: every parameter and buffer of our SpineNetMobile has one TF layer."""
    model = build_backbone(arch, 'swish')
    layout = conv.tf_mobile_layout(arch)
    names = [t for _, t, _ in layout]
    assert len(names) == len(set(names))
    ours = {k.rsplit('.', 1)[0] for k in model.state_dict()}
    assert {o for o, _, _ in layout} == ours


@pytest.mark.slow
def test_mobile_checkpoint_without_family_mobile_is_one_line(tf_reference, tmp_path):
    """The converter's default family on a SpineNet-Mobile checkpoint: exit 2 and one line
    that names --family mobile and the checkpoint's 3x3 stem, not TF's restore errors."""
    def convert(arch):
        return subprocess.run(
            [sys.executable, CONVERTER, reference(tf_reference, 'ckpt'), str(tmp_path / 'o.pth'),
             '--arch', arch, '--tf-python', TF_PYTHON], cwd=REPO, capture_output=True,
            text=True, timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))

    # an arch both families have: the checkpoint's stem tells
    proc = convert('49')
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith('error: ')]
    assert len(lines) == 1 and 'add --family mobile' in lines[0], proc.stderr[-3000:]
    assert 'stem kernels are 3x3x3x' in lines[0]
    assert 'Traceback' not in proc.stderr
    # a mobile-only arch: the flags alone tell
    proc = convert(RETINANET[0])
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert 'a SpineNet-Mobile arch: add --family mobile' in proc.stderr
    assert not (tmp_path / 'o.pth').exists()
