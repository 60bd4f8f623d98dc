"""Legacy tensorflow/tpu SpineNet checkpoints: names, conversion and parity.

Two references, both with the same deterministic random weights
(``tests/reference/tpu_legacy_weights.py``):

- **tensorflow/tpu's own code** (TF1, graph mode), which wrote the published checkpoints:
  ``tests/reference/tpu_legacy_record.py`` ran it once and recorded in
  ``tests/data/tpu_legacy/<case>.npz`` every variable name and shape it creates and its
  outputs (no package ships that code, so CI cannot run it). Our model with
  ``padding_mode='tf_tpu'`` must reproduce those outputs within 1e-4 relative, and the
  converter's name layout must be exactly the recorded names and shapes.
- **TF Model Garden's TF2 port** ``official/legacy/detection`` (Keras), run here in
  ``.venv-tf`` by ``tests/reference/tf_tpu_legacy_export.py`` (one process for the module),
  which also writes a *name-based* checkpoint with the TPU names (``Momentum`` slots and
  ``global_step`` included). That port pads its strided convs TF-'SAME' and pools in 3x3/2
  steps, so our model with ``padding_mode='tf_same'`` must reproduce it; the TPU padding does
  not (a control asserts the difference).

The checkpoint goes through the converter's CLI (TF stage in ``.venv-tf``) and must give the
same state dict as the recorded arrays. No skips: without ``.venv-tf`` these tests fail and
say how to create it.
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

DATA = osp.join(REPO, 'tests', 'data', 'tpu_legacy')
EXPORT = osp.join(REPO, 'tests', 'reference', 'tf_tpu_legacy_export.py')
CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'tpu_legacy2mmdet.py')
RTOL = 1e-4
LEVELS = range(3, 8)
#: Recorded SpineNet cases (96: block repeats); TF_CASES also get a TF2 legacy reference and a
#: name-based checkpoint (one TF process; 49S keeps it quick).
CASES = ('retinanet_spinenet49S', 'spinenet96')
TF_CASES = ('retinanet_spinenet49S',)
MBCONV = 'retinanet_spinenet_mbconv49'
MASK_RCNN = 'mask_rcnn_spinenet49S'

weights_lib = load_tool('tests/reference/tpu_legacy_weights.py')


def conv_modules():
    from mmdet_spine.converters import tf_model_garden, tpu_legacy
    return tpu_legacy, tf_model_garden


tpu, tmg = conv_modules()


def recorded(case):
    """(shapes, meta, recorded arrays) of a case recorded from tensorflow/tpu's code."""
    with np.load(osp.join(DATA, f'{case}.npz'), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    names = [str(n) for n in arrays.pop('__names__')]
    shapes = dict(zip(names, json.loads(str(arrays.pop('__shapes__')))))
    meta = json.loads(str(arrays.pop('__meta__')))
    return shapes, meta, arrays


def tpu_weights(case):
    shapes, meta, _ = recorded(case)
    return weights_lib.random_weights(shapes, meta['seed'])


def tf2_name_map(meta):
    """TF2 legacy Keras layer -> TPU layer, from the two layouts (same parts, same order)."""
    mapping = {}
    tf2 = tmg.tf_layout(meta['arch'], legacy=True)
    ours = tpu.tpu_spinenet_layout(meta['arch'])
    assert [p for p, *_ in tf2] == [p for p, *_ in ours]
    for (_, conv2, bn2, _), (_, conv, bn, _) in zip(tf2, ours):
        mapping[conv2], mapping[bn2] = conv, bn
    if meta['head'] == 'retinanet':
        for net, layer in (('class_net', 'class'), ('box_net', 'box')):
            # the Keras port keeps the TPU's layer names under the same name scopes
            keras = [f'{net}/{layer}-{i}' for i in range(meta['num_convs'])]
            keras += [f'{net}/{layer}-{i}-{lv}' for i in range(meta['num_convs'])
                      for lv in LEVELS]
            keras.append(f'{net}/{layer}-predict')
            mapping.update((k, f'retinanet/{k}') for k in keras)
    return mapping


@pytest.fixture(scope='module')
def tf_reference(tmp_path_factory):
    """One TF process: name-based checkpoints + TF2 legacy outputs for every case."""
    if not osp.exists(TF_PYTHON):
        return dict(error=f'TF reference environment missing: {TF_PYTHON} does not exist; '
                          'see tests/test_models/test_spinenet_tf_parity.py for how to create it')
    root = tmp_path_factory.mktemp('tpu_legacy')
    jobs = []
    for case in TF_CASES:
        _, meta, _ = recorded(case)
        with open(root / f'{case}_map.json', 'w') as f:
            json.dump(tf2_name_map(meta), f)
        jobs.append(dict(recorded=osp.join(DATA, f'{case}.npz'), out=str(root / f'{case}.npz'),
                         ckpt_out=str(root / case / 'model.ckpt-231500'),
                         name_map=str(root / f'{case}_map.json')))
    with open(root / 'cases.json', 'w') as f:
        json.dump(jobs, f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='',
               OMP_NUM_THREADS='1')
    proc = subprocess.run([TF_PYTHON, EXPORT, '--cases', str(root / 'cases.json')], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return dict(error=f'TF export failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
                          f'{proc.stderr[-6000:]}')
    return dict(root=root)


def reference(tf_reference, case):
    if 'error' in tf_reference:
        pytest.fail(tf_reference['error'], pytrace=False)
    root = tf_reference['root']
    with np.load(root / f'{case}.npz', allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return arrays, json.loads(str(arrays.pop('__meta__'))), str(root / case)


def family(meta):
    return meta.get('family', 'spinenet')


def build_retinanet(meta, padding_mode, classes=80):
    """Our RetinaNet (SpineNet / SpineNetMobile + RetinaSepBNActHead) with the TPU recipe's
    options."""
    import mmdet_spine  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet')
    mbconv = family(meta) == 'mbconv'
    backbone = dict(type='SpineNetMobile' if mbconv else 'SpineNet',
                    **tpu.model_kwargs(meta['arch'], family=family(meta)))
    backbone['padding_mode'] = padding_mode
    head_arrays = tpu.tpu_retinanet_head_arrays(tpu_weights(meta['case']))
    head = tpu.head_kwargs(head_arrays, classes)
    cfg = dict(type='RetinaNet', backbone=backbone, neck=None, bbox_head=dict(
        head, loss_cls=dict(type='FocalLoss', use_sigmoid=True),
        loss_bbox=dict(type='L1Loss')),
        data_preprocessor=dict(type='DetDataPreprocessor'))
    return MODELS.build(cfg).eval()


def build_backbone(meta, padding_mode, recipe='retinanet'):
    from mmdet_spine.models.backbones import SpineNet, SpineNetMobile

    kwargs = tpu.model_kwargs(meta['arch'], recipe=recipe, family=family(meta))
    kwargs['padding_mode'] = padding_mode
    return (SpineNetMobile if family(meta) == 'mbconv' else SpineNet)(**kwargs).eval()


def rel_diff(got, ref):
    """max |got - ref| / max |ref| (the tolerance is relative to the output's scale)."""
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12))


def nhwc(t):
    return t.permute(0, 2, 3, 1).numpy()


def run_backbone(model, image):
    x = torch.from_numpy(image).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        return model(x)


def level_diffs(outs, ref):
    return {lv: rel_diff(nhwc(o), ref[f'__out_{lv}__']) for lv, o in zip(LEVELS, outs)}


def head_diffs(model, image, ref):
    """Per level (cls, box) relative differences, TF outputs in our anchor/class/box order."""
    perm = tmg.anchor_permutation(3, tpu.TPU_ASPECT_RATIOS)
    keep = list(tmg.COCO80_IDS)
    x = torch.from_numpy(image).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        cls_scores, bbox_preds = model.bbox_head(model.backbone(x))
    diffs = {}
    for level, c, b in zip(LEVELS, cls_scores, bbox_preds):
        tc = ref[f'__cls_{level}__']
        tb = ref[f'__box_{level}__']
        tc = tc.reshape(*tc.shape[:3], 9, -1)[:, :, :, perm][..., keep]
        tb = tb.reshape(*tb.shape[:3], 9, 4)[:, :, :, perm][..., [1, 0, 3, 2]]
        bs, _, h, w = c.shape
        diffs[level] = (rel_diff(nhwc(c).reshape(bs, h, w, 9, 80), tc),
                        rel_diff(nhwc(b).reshape(bs, h, w, 9, 4), tb))
    return diffs


# ------------------------------------------------------------------ names (no TF needed)
@pytest.mark.parametrize('case', CASES)
def test_layout_names_and_shapes_are_the_tpu_codes(case):
    """The converter's names for every backbone conv/BN are exactly the variables the
    tensorflow/tpu code created (recorded), with the same shapes."""
    shapes, meta, _ = recorded(case)
    backbone = {k: tuple(v) for k, v in shapes.items() if k.startswith('spinenet/')}
    ours = {}
    for _, conv, bn, shape in tpu.tpu_spinenet_layout(meta['arch']):
        ours[f'{conv}/kernel'] = tuple(shape)
        for var in ('gamma', 'beta', 'moving_mean', 'moving_variance'):
            ours[f'{bn}/{var}'] = (shape[-1],)
    assert ours == backbone


@pytest.mark.parametrize('case', CASES)
def test_converts_every_recorded_variable_into_our_model(case):
    shapes, meta, _ = recorded(case)
    state = tpu.convert_tpu_arrays(tpu_weights(case), meta['arch'])  # raises on leftovers
    n_backbone = sum(int(np.prod(s)) for k, s in shapes.items() if k.startswith('spinenet/')
                     and not k.endswith(('moving_mean', 'moving_variance')))
    ours = sum(v.numel() for k, v in state.items()
               if k.startswith(('backbone.', 'stem', 'init', 'blocks', 'endpoints'))
               and k.endswith(('weight', 'bias')) and 'running' not in k)
    assert ours == n_backbone  # trainable parameters: ours == TPU's


# ------------------------------------------------------- tensorflow/tpu's own outputs
@pytest.mark.parametrize('case', CASES)
def test_backbone_matches_tensorflow_tpu_code(case):
    _, meta, ref = recorded(case)
    state = tpu.convert_tpu_arrays(tpu_weights(case), meta['arch'], head='none')
    model = build_backbone(meta, 'tf_tpu')
    model.load_state_dict(state, strict=True)
    diffs = level_diffs(run_backbone(model, ref['__input__']), ref)
    print(f'{case} backbone vs tensorflow/tpu, max rel diff per level: {diffs}')
    assert max(diffs.values()) <= RTOL, diffs
    assert min(float(np.std(ref[f'__out_{lv}__'])) for lv in LEVELS) > 0.01  # signal


def test_retinanet_head_matches_tensorflow_tpu_code():
    case = 'retinanet_spinenet49S'
    _, meta, ref = recorded(case)
    model = build_retinanet(meta, 'tf_tpu')
    model.load_state_dict(tpu.convert_tpu_arrays(tpu_weights(case), meta['arch']), strict=True)
    diffs = head_diffs(model, ref['__input__'], ref)
    print(f'{case} head vs tensorflow/tpu, max rel diff per level (cls, box): {diffs}')
    assert max(max(d) for d in diffs.values()) <= RTOL, diffs
    # parameters: TPU's trainable count minus the tower conv biases folded into our BNs
    shapes, _, _ = recorded(case)
    tpu_params = sum(int(np.prod(s)) for k, s in shapes.items()
                     if not k.endswith(('moving_mean', 'moving_variance')))
    folded = 2 * meta['num_convs'] * meta['num_filters']
    ours = build_retinanet(meta, 'tf_tpu', classes=91)
    assert sum(p.numel() for p in ours.parameters()) == tpu_params - folded


def test_tf_same_padding_is_not_tpu_parity():
    """Control: the TF2 ('SAME') padding misses the TPU code's outputs."""
    case = 'spinenet96'
    _, meta, ref = recorded(case)
    model = build_backbone(meta, 'tf_same')
    model.load_state_dict(tpu.convert_tpu_arrays(tpu_weights(case), meta['arch']))
    assert max(level_diffs(run_backbone(model, ref['__input__']), ref).values()) > 100 * RTOL


# ----------------------------------------------- TF2 port + name-based checkpoints (TF)
@pytest.mark.slow
@pytest.mark.parametrize('case', TF_CASES)
def test_tf2_legacy_port_matches_with_tf_same_padding(tf_reference, case):
    ref, meta, _ = reference(tf_reference, case)
    state = tpu.convert_tpu_arrays(tpu_weights(case), meta['arch'])
    if meta['head'] == 'retinanet':
        model = build_retinanet(meta, 'tf_same')
        model.load_state_dict(state, strict=True)
        diffs = head_diffs(model, ref['__input__'], ref)
        print(f'{case} head vs TF2 legacy port (cls, box): {diffs}')
        assert max(max(d) for d in diffs.values()) <= RTOL, diffs
        outs = run_backbone(model.backbone, ref['__input__'])
        ours_params = sum(p.numel() for p in build_retinanet(meta, 'tf_same', 91).parameters())
        assert ours_params == meta['trainable_params'] - 2 * meta['num_convs'] * \
            meta['num_filters']
    else:
        model = build_backbone(meta, 'tf_same')
        model.load_state_dict(state, strict=True)
        outs = run_backbone(model, ref['__input__'])
        assert sum(p.numel() for p in model.parameters()) == meta['trainable_params']
    diffs = level_diffs(outs, ref)
    print(f'{case} backbone vs TF2 legacy port: {diffs}')
    assert max(diffs.values()) <= RTOL, diffs


@pytest.mark.slow
def test_name_based_checkpoint_converts_in_one_command(tf_reference, tmp_path):
    """TPU-style checkpoint (TPU names, Momentum slots, global_step) -> .pth via the CLI."""
    case = 'retinanet_spinenet49S'
    _, meta, ckpt_dir = reference(tf_reference, case)
    out = str(tmp_path / 'retinanet49S_tpu.pth')
    proc = subprocess.run(
        [sys.executable, CONVERTER, ckpt_dir, out, '--arch', meta['arch'],
         '--tf-python', TF_PYTHON], cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES=''))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    ckpt = torch.load(out, map_location='cpu', weights_only=True)
    expected = tpu.convert_tpu_arrays(tpu_weights(case), meta['arch'])
    assert list(ckpt['state_dict']) == list(expected)
    for key, value in expected.items():
        assert torch.equal(ckpt['state_dict'][key], value), key
    assert ckpt['meta']['converter'] == 'tpu_legacy2mmdet'


def test_wrong_arch_is_refused_in_one_line():
    from mmdet_spine.errors import ConverterError

    with pytest.raises(ConverterError, match='wrong arch'):
        tpu.convert_tpu_arrays(tpu_weights('retinanet_spinenet49S'), '49')


# ------------------------------------------------------------ SpineNet-MBConv (TPU only)
def test_mbconv_retinanet_matches_tensorflow_tpu_code():
    """SpineNet-MBConv-49 + separable RetinaNet head: names, outputs and parameters. (No TF2
    port of spinenet_mbconv.py exists; TF Model Garden's SpineNetMobile is a different
    model: its SE is relu / hard-sigmoid, the TPU's swish / sigmoid.)"""
    shapes, meta, ref = recorded(MBCONV)
    ours_names = {}
    for _, name, kind in tpu.tpu_mbconv_layout(meta['arch']):
        leaves = {'bn': ['gamma', 'beta', 'moving_mean', 'moving_variance'],
                  'depthwise': ['depthwise_kernel'], 'conv': ['kernel'],
                  'conv_bias': ['kernel', 'bias']}[kind]
        ours_names.update((f'{name}/{leaf}', None) for leaf in leaves)
    assert set(ours_names) == {k for k in shapes if k.startswith('spinenet_mbconv/')}
    state = tpu.convert_tpu_arrays(tpu_weights(MBCONV), meta['arch'], family='mbconv')
    model = build_retinanet(meta, 'pytorch')
    model.load_state_dict(state, strict=True)
    diffs = level_diffs(run_backbone(model.backbone, ref['__input__']), ref)
    print(f'{MBCONV} backbone vs tensorflow/tpu: {diffs}')
    assert max(diffs.values()) <= RTOL, diffs
    hdiffs = head_diffs(model, ref['__input__'], ref)
    print(f'{MBCONV} head vs tensorflow/tpu (cls, box): {hdiffs}')
    assert max(max(d) for d in hdiffs.values()) <= RTOL, hdiffs
    tpu_params = sum(int(np.prod(s)) for k, s in shapes.items()
                     if not k.endswith(('moving_mean', 'moving_variance')))
    assert sum(p.numel() for p in build_retinanet(meta, 'pytorch', 91).parameters()) == \
        tpu_params  # separable head: pointwise biases kept, nothing folded
    # control: TF Model Garden's SE activations miss the TPU's outputs
    other_kwargs = tpu.model_kwargs(meta['arch'], family='mbconv')
    other_kwargs.pop('se_act_cfg')
    from mmdet_spine.models.backbones import SpineNetMobile
    other = SpineNetMobile(**other_kwargs).eval()
    other.load_state_dict({k[len('backbone.'):]: v for k, v in state.items()
                           if k.startswith('backbone.')})
    assert max(level_diffs(run_backbone(other, ref['__input__']), ref).values()) > 100 * RTOL


# ------------------------------------------------------------------- Mask R-CNN (TPU only)
def mask_rcnn_heads(meta, num_classes=80):
    """Our RPNSepBNHead, NormActConvFCBBoxHead and NormActFCNMaskHead with the recorded
    case's widths and the TPU Mask R-CNN recipe (relu, BN eps 1e-3, 3 anchors per place)."""
    import mmdet_spine  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet')
    bn = dict(type='BN', momentum=0.01, eps=meta['epsilon'], requires_grad=True)
    act = dict(type='ReLU')
    rpn = MODELS.build(dict(
        type='RPNSepBNHead', num_ins=5, in_channels=meta['rpn_filters'],
        feat_channels=meta['rpn_filters'], num_convs=1, norm_cfg=bn, act_cfg=act,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=3,
                              scales_per_octave=1, ratios=[0.5, 1.0, 2.0],
                              strides=[8, 16, 32, 64, 128], center_offset=0.5),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                        target_stds=[1.] * 4))).eval()
    box = MODELS.build(dict(
        type='NormActConvFCBBoxHead', num_shared_convs=meta['box_convs'],
        num_shared_fcs=meta['fcs'], in_channels=meta['rpn_filters'],
        conv_out_channels=meta['box_filters'], fc_out_channels=meta['fc_dims'],
        roi_feat_size=7, num_classes=num_classes, norm_cfg=bn, act_cfg=act,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                        target_stds=[0.1, 0.1, 0.2, 0.2]))).eval()
    mask = MODELS.build(dict(
        type='NormActFCNMaskHead', num_convs=meta['mask_convs'],
        in_channels=meta['rpn_filters'], conv_out_channels=meta['mask_filters'],
        roi_feat_size=14, num_classes=num_classes, norm_cfg=bn, act_cfg=act)).eval()
    return rpn, box, mask


def _split(state, key):
    return {k[len(key):]: v for k, v in state.items() if k.startswith(key)}


def test_mask_rcnn_matches_tensorflow_tpu_code():
    """Backbone P3-P7, RPN outputs (on the TPU's P3-P7), box-head and mask-head outputs for
    fixed RoI features, each within 1e-4 relative; parameter counts."""
    shapes, meta, ref = recorded(MASK_RCNN)
    state = tpu.convert_tpu_arrays(tpu_weights(MASK_RCNN), meta['arch'])  # all used
    backbone = build_backbone(meta, 'tf_tpu', recipe='mask_rcnn')
    backbone.load_state_dict(_split(state, 'backbone.'), strict=True)
    diffs = {'backbone': max(level_diffs(run_backbone(backbone, ref['__input__']), ref).values())}
    rpn, box, mask = mask_rcnn_heads(meta)
    rpn.load_state_dict(_split(state, 'rpn_head.'), strict=True)
    box.load_state_dict(_split(state, 'roi_head.bbox_head.'), strict=True)
    mask.load_state_dict(_split(state, 'roi_head.mask_head.'), strict=True)
    feats = [torch.from_numpy(ref[f'__out_{lv}__']).permute(0, 3, 1, 2) for lv in LEVELS]
    with torch.no_grad():
        scores, deltas = rpn(feats)
    perm = tmg.anchor_permutation(1, tpu.TPU_ASPECT_RATIOS)
    for level, c, b in zip(LEVELS, scores, deltas):
        tc = ref[f'__rpn_cls_{level}__'][..., perm]
        tb = ref[f'__rpn_box_{level}__']
        tb = tb.reshape(*tb.shape[:3], 3, 4)[:, :, :, perm][..., [1, 0, 3, 2]]
        diffs[f'rpn_cls_{level}'] = rel_diff(nhwc(c), tc)
        diffs[f'rpn_box_{level}'] = rel_diff(nhwc(b).reshape(tb.shape), tb)
    keep = list(tmg.COCO80_IDS)
    rois = torch.from_numpy(ref['__box_rois__'][0]).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        cls, reg = box(rois)
    diffs['box_cls'] = rel_diff(cls.numpy(), ref['__frcnn_cls__'][0][:, keep + [0]])
    tf_reg = ref['__frcnn_box__'][0].reshape(len(rois), -1, 4)[:, keep][..., [1, 0, 3, 2]]
    diffs['box_reg'] = rel_diff(reg.numpy().reshape(tf_reg.shape), tf_reg)
    mask_rois = torch.from_numpy(ref['__mask_rois__'][0]).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        logits = mask(mask_rois)
    labels = [keep.index(int(c)) for c in ref['__mask_classes__'][0]]
    ours = logits[torch.arange(len(labels)), labels].numpy()
    diffs['mask'] = rel_diff(ours, ref['__mask_logits__'][0])
    print(f'{MASK_RCNN} vs tensorflow/tpu, max rel diff: {diffs}')
    assert max(diffs.values()) <= RTOL, diffs
    # parameters (all 91 TF classes kept: 90 foreground + background)
    rpn, box, mask = mask_rcnn_heads(meta, num_classes=90)

    def tpu_count(scope):
        return sum(int(np.prod(s)) for k, s in shapes.items() if k.startswith(scope)
                   and not k.endswith(('moving_mean', 'moving_variance')))

    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert count(backbone) == tpu_count('spinenet/')
    assert count(rpn) == tpu_count('rpn_head/') - meta['rpn_filters']  # conv bias folded
    folded = meta['box_convs'] * meta['box_filters']
    assert count(box) == tpu_count('fast_rcnn_head/') - folded - (meta['fc_dims'] + 1) * 4
    folded = meta['mask_convs'] * meta['mask_filters']
    assert count(mask) == tpu_count('mask_head/') - folded - (meta['mask_filters'] + 1)


# ------------------------------------------------------------- ImageNet classifier (TPU)
CLASSIFICATION = 'classification_spinenet49S'


def test_classifier_matches_tensorflow_tpu_code():
    """SpineNet + ClassificationHead(aggregation='all') -> our SpineClassifier
    (PyramidAveragePooling + LinearClassificationHead): logits of the 1000 ImageNet classes
    (TF's column 0, the background, dropped) within 1e-4 relative; parameters."""
    import mmdet_spine  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    shapes, meta, ref = recorded(CLASSIFICATION)
    state = tpu.convert_tpu_arrays(tpu_weights(CLASSIFICATION), meta['arch'])
    init_default_scope('mmdet')
    backbone = dict(type='SpineNet', **tpu.model_kwargs(meta['arch'], recipe='classification'))
    model = MODELS.build(dict(
        type='SpineClassifier', backbone=backbone,
        neck=dict(type='PyramidAveragePooling', aggregation='all'),
        head=dict(type='LinearClassificationHead', num_classes=1000))).eval()
    model.load_state_dict(state, strict=True)
    x = torch.from_numpy(ref['__input__']).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        logits = model(x)
    diff = rel_diff(logits.numpy(), ref['__logits__'][:, 1:])
    print(f'{CLASSIFICATION} logits vs tensorflow/tpu, max rel diff {diff}')
    assert diff <= RTOL
    tpu_params = sum(int(np.prod(s)) for k, s in shapes.items()
                     if not k.endswith(('moving_mean', 'moving_variance')))
    fc_in = state['head.fc.weight'].shape[1]
    assert sum(p.numel() for p in model.parameters()) == tpu_params - (fc_in + 1)  # background


# -------------------------------------------------- the zoo rows' configs + Cfg Options
def zoo_model(name):
    """The zoo row's config with its Cfg Options (SyncBN as BN: CPU, eval), and the row."""
    import mmdet_spine  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    from mmdet_spine.engine.cli import load_config
    from mmdet_spine.zoo.model_index import get_model

    row = get_model(name)
    assert row.converter == 'tpu_legacy2mmdet' and row.needs_tensorflow
    cfg = load_config(row.config, row.cfg_options)

    def no_sync(node):
        if isinstance(node, dict):
            if node.get('type') == 'SyncBN':
                node['type'] = 'BN'
            for v in node.values():
                no_sync(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                no_sync(v)
    no_sync(cfg.model)
    init_default_scope('mmdet')
    return row, MODELS.build(cfg.model).eval()


@pytest.mark.parametrize('name,case', [('retinanet_spinenet-49s_coco_tpu', 'retinanet_spinenet49S'),
                                       ('retinanet_spinenet-mobile-49_coco_tpu', MBCONV)])
def test_zoo_row_config_reproduces_tensorflow_tpu_code(name, case):
    """The row's config + Cfg Options + Converter Args give the TPU code's outputs (the
    recorded case has the row's architecture and head widths)."""
    row, model = zoo_model(name)
    _, meta, ref = recorded(case)
    state = tpu.convert_tpu_arrays(tpu_weights(case), **row.converter_args)
    model.load_state_dict(state, strict=True)
    diffs = head_diffs(model, ref['__input__'], ref)
    assert max(max(d) for d in diffs.values()) <= RTOL, diffs


@pytest.mark.parametrize('name', ['mask-rcnn_spinenet-49_coco_tpu',
                                  'mask-rcnn_spinenet-96_coco_tpu'])
def test_zoo_mask_rcnn_rows_take_the_converted_heads(name):
    """The Mask R-CNN rows' models (relu, 3 anchors per location via Cfg Options) have the
    converted heads' keys; the recorded heads are narrower than the published ones, so shapes
    are compared where the widths do not enter (the anchors)."""
    row, model = zoo_model(name)
    assert model.rpn_head.num_base_priors == 3
    assert model.backbone.padding_mode == 'tf_tpu'
    assert model.roi_head.bbox_head.act_cfg['type'] == 'ReLU'
    state = tpu.convert_tpu_arrays(tpu_weights(MASK_RCNN), '49S')
    ours = {k for k in model.state_dict() if not k.startswith('backbone.')}
    assert ours == {k for k in state if not k.startswith('backbone.')}
    assert state['rpn_head.rpn_cls.weight'].shape[0] == model.rpn_head.rpn_cls.out_channels


def test_cli_torch_stage_and_one_line_errors(tmp_path):
    """``.npz -> .pth`` needs no TensorFlow; a wrong arch or family is one line, exit 2."""
    from helpers import run_tool

    npz = str(tmp_path / 'mbconv.npz')
    np.savez(npz, **tpu_weights(MBCONV), __meta__=np.array('{}'))
    out = str(tmp_path / 'mbconv.pth')
    run_tool([CONVERTER, npz, out, '--arch', '49', '--family', 'mbconv'])
    state = torch.load(out, map_location='cpu', weights_only=True)['state_dict']
    assert any(k.startswith('bbox_head.retina_cls.pointwise_conv') for k in state)
    proc = run_tool([CONVERTER, npz, out, '--arch', '49S', '--family', 'mbconv'], check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and 'wrong arch' in last, last
    assert 'Traceback' not in proc.stderr
    from mmdet_spine.errors import ConverterError
    with pytest.raises(ConverterError, match=r"family=mbconv\?"):
        tpu.convert_tpu_arrays(tpu_weights(MBCONV), '49')


@pytest.mark.parametrize('name', ['mask-rcnn_spinenet-49_coco_tpu'])
def test_zoo_mask_rcnn_roi_features_match_tensorflow_tpu_code(name):
    """The row's RoI extractors (Cfg Options) give the TPU's multilevel_crop_and_resize
    features (recorded: random P3-P7 of a 1024 px image, boxes on every level); the config's
    defaults (aligned RoIAlign, adaptive sampling, P3-P6 from sqrt(area) / 56) do not."""
    _, model = zoo_model(name)
    with np.load(osp.join(DATA, 'roi_extraction.npz'), allow_pickle=False) as data:
        ref = {k: data[k] for k in data.files}
    feats = tuple(torch.from_numpy(ref[f'__feat_{lv}__']).permute(0, 3, 1, 2).contiguous()
                  for lv in LEVELS)
    boxes = ref['__boxes__'][0][:, [1, 0, 3, 2]]  # y1 x1 y2 x2 -> x1 y1 x2 y2
    rois = torch.from_numpy(np.concatenate([np.zeros((len(boxes), 1)), boxes], 1)
                            .astype(np.float32))
    diffs = {}
    for extractor, size in ((model.roi_head.bbox_roi_extractor, 7),
                            (model.roi_head.mask_roi_extractor, 14)):
        extractor.out_channels = feats[0].shape[1]  # the recorded maps are 8 wide, not 256
        with torch.no_grad():
            got = extractor(feats, rois).permute(0, 2, 3, 1).numpy()
        diffs[size] = rel_diff(got, ref[f'__roi_{size}__'][0])
    print(f'{name} RoI features vs tensorflow/tpu: {diffs}')
    assert max(diffs.values()) <= RTOL, diffs
    # control: the config without the Cfg Options
    from mmdet.registry import MODELS
    default = MODELS.build(dict(type='SingleRoIExtractor', roi_layer=dict(
        type='RoIAlign', output_size=7, sampling_ratio=0), out_channels=8,
        featmap_strides=[8, 16, 32, 64]))
    with torch.no_grad():
        got = default(feats[:4], rois).permute(0, 2, 3, 1).numpy()
    assert rel_diff(got, ref['__roi_7__'][0]) > 0.1
