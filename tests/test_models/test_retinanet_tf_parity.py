"""RetinaNet-SpineNet against TF Model Garden: converted weights give TF's head outputs, and our
config's anchors + box coder decode them to TF's boxes.

``tests/reference/tf_retinanet_export.py`` (in ``.venv-tf``) builds TF's ``RetinaNetModel``
(SpineNet-49S, swish, a 4 x 128 ``RetinaNetHead``, 91 COCO classes, random weights and BN
statistics) and writes its variables, raw per-level outputs, anchors and decoded boxes/scores,
plus a trainer-style checkpoint. ``tools/model_converters/spinenet_tf2mmdet.py`` converts
them; our RetinaNet is built from ``configs/spinenet/retinanet_spinenet-49s_*`` (the config's
own anchor generator and box coder) with the TF-compatible backbone options, and must give:

- per level, the raw class logits (TF's 80 COCO columns, anchors reordered) and box deltas
  ((ty, tx, th, tw) -> (dx, dy, dw, dh)) within 1e-4;
- the config's anchors == TF's anchor boxes;
- mmdet's decoded boxes (clipped to the image) == TF's decoded boxes, and our sigmoid scores ==
  TF's scores of the same classes.

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
from mmengine.config import Config
from mmengine.registry import init_default_scope

from helpers import REPO, TF_PYTHON, load_tool

EXPORT = osp.join(REPO, 'tests', 'reference', 'tf_retinanet_export.py')
CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'spinenet_tf2mmdet.py')
CONFIG = osp.join(REPO, 'configs', 'spinenet', 'retinanet_spinenet-49s_32xb8-lsj-500e_coco-640.py')
TOLERANCE = 1e-4
SIZE = 128
LEVELS = range(3, 8)


def load_converter():
    from mmdet_spine.converters import tf_model_garden
    return tf_model_garden


conv = load_converter()


@pytest.fixture(scope='module')
def tf_reference(tmp_path_factory):
    """Run the TF export once; {'npz', 'ckpt'} or {'error': why}."""
    if not osp.exists(TF_PYTHON):
        return dict(error=f'TF reference environment missing: {TF_PYTHON} does not exist; '
                          'see tests/test_models/test_spinenet_tf_parity.py for how to create it')
    root = tmp_path_factory.mktemp('tf_retinanet')
    npz, ckpt = str(root / 'retinanet49S.npz'), str(root / 'ckpt' / 'ckpt-1')
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='',
               OMP_NUM_THREADS='1')
    proc = subprocess.run([TF_PYTHON, EXPORT, '--arch', '49S', '--size', str(SIZE),
                           '--num-filters', '128', '--out', npz, '--ckpt-out', ckpt],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return dict(error=f'TF export failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
                          f'{proc.stderr[-6000:]}')
    return dict(npz=npz, ckpt=ckpt)


def reference(tf_reference):
    if 'error' in tf_reference:
        pytest.fail(tf_reference['error'], pytrace=False)
    return tf_reference


def build_ours():
    """The 49S RetinaNet config, with BN for SyncBN and the backbone's TF-compatible options."""
    import mmdet_spine  # noqa: F401
    from mmdet.registry import MODELS

    init_default_scope('mmdet')
    cfg = Config.fromfile(CONFIG)
    bn = dict(type='BN', momentum=0.01, eps=1e-3, requires_grad=True)
    cfg.model.backbone.update(norm_cfg=bn, padding_mode='tf_same')
    cfg.model.bbox_head.update(norm_cfg=bn)
    return MODELS.build(cfg.model).eval()


def run_ours(model, arrays):
    x = torch.from_numpy(arrays['__input__']).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        return model.bbox_head(model.backbone(x))


def tf_in_our_order(arrays, perm, keep):
    """TF's raw outputs per level as (B, H, W, A, C) / (B, H, W, A, 4) in our anchor, class
    and coordinate order."""
    cls, box = {}, {}
    for level in LEVELS:
        c = arrays[f'__cls_{level}__']
        b = arrays[f'__box_{level}__']
        c = c.reshape(*c.shape[:3], 9, -1)[:, :, :, perm][..., keep]
        b = b.reshape(*b.shape[:3], 9, 4)[:, :, :, perm][..., [1, 0, 3, 2]]
        cls[level], box[level] = c, b
    return cls, box


def nhwac(t, last):
    b, _, h, w = t.shape
    return t.permute(0, 2, 3, 1).reshape(b, h, w, -1, last).numpy()


@pytest.fixture(scope='module')
def converted(tf_reference):
    arrays, meta = conv.load_npz(reference(tf_reference)['npz'])
    state = conv.convert_tf_checkpoint(reference(tf_reference)['npz'], arch='49S')
    model = build_ours()
    model.load_state_dict(state, strict=True)
    return arrays, meta, state, model


@pytest.mark.slow
def test_raw_head_outputs_match_tf(converted):
    arrays, meta, _, model = converted
    assert meta['box_coder_weights'] is None  # TF's RetinaNet decodes raw deltas
    cls_scores, bbox_preds = run_ours(model, arrays)
    perm = conv.anchor_permutation(3, meta['aspect_ratios'], [0.5, 1.0, 2.0], True)
    assert sorted(perm) == list(range(9)) and perm != list(range(9))
    tf_cls, tf_box = tf_in_our_order(arrays, perm, list(conv.COCO80_IDS))
    diffs = {}
    for level, c, b in zip(LEVELS, cls_scores, bbox_preds):
        assert c.shape[1] == 9 * 80
        diffs[level] = (float(np.abs(nhwac(c, 80) - tf_cls[level]).max()),
                        float(np.abs(nhwac(b, 4) - tf_box[level]).max()))
    print(f'RetinaNet-49S head max abs diff per level (cls, box): {diffs}')
    assert max(max(d) for d in diffs.values()) <= TOLERANCE, diffs
    # control: TF's anchor order / coordinate order taken as ours is far off
    wrong_cls, wrong_box = tf_in_our_order(arrays, list(range(9)), list(conv.COCO80_IDS))
    assert np.abs(nhwac(cls_scores[0], 80) - wrong_cls[3]).max() > 100 * TOLERANCE
    wrong_box = wrong_box[3][..., [1, 0, 3, 2]]
    assert np.abs(nhwac(bbox_preds[0], 4) - wrong_box).max() > 100 * TOLERANCE


@pytest.mark.slow
def test_config_anchors_and_decoded_boxes_match_tf(converted):
    arrays, meta, _, model = converted
    head = model.bbox_head
    cls_scores, bbox_preds = run_ours(model, arrays)
    sizes = [c.shape[-2:] for c in cls_scores]
    anchors = head.prior_generator.grid_priors(sizes, device='cpu')
    perm = conv.anchor_permutation(3, meta['aspect_ratios'], [0.5, 1.0, 2.0], True)
    ours_boxes, ours_scores = [], []
    for level, a, c, b in zip(LEVELS, anchors, cls_scores, bbox_preds):
        h, w = c.shape[-2:]
        tf_anchors = arrays[f'__anchors_{level}__'].reshape(h, w, 9, 4)[:, :, perm]
        tf_anchors = tf_anchors[..., [1, 0, 3, 2]]  # y1 x1 y2 x2 -> x1 y1 x2 y2
        ours = a.reshape(h, w, 9, 4).numpy()
        assert np.abs(ours - tf_anchors).max() <= 1e-4, level
        deltas = b[0].permute(1, 2, 0).reshape(-1, 4)
        boxes = head.bbox_coder.decode(a, deltas, max_shape=(SIZE, SIZE))
        ours_boxes.append(boxes.reshape(h, w, 9, 4))
        ours_scores.append(c[0].permute(1, 2, 0).reshape(h, w, 9, 80).sigmoid())
    # TF's decoded outputs: levels concatenated, each (H, W, TF anchor) flattened
    tf_boxes = arrays['__decoded_boxes__'][0][:, [1, 0, 3, 2]]
    tf_scores = arrays['__decoded_scores__'][0]  # class j at column j - 1
    start, box_diff, score_diff = 0, 0.0, 0.0
    keep = [i - 1 for i in conv.COCO80_IDS]
    for boxes, scores in zip(ours_boxes, ours_scores):
        h, w = boxes.shape[:2]
        n = h * w * 9
        ref_boxes = tf_boxes[start:start + n].reshape(h, w, 9, 4)[:, :, perm]
        ref_scores = tf_scores[start:start + n].reshape(h, w, 9, -1)[:, :, perm][..., keep]
        box_diff = max(box_diff, float(np.abs(boxes.numpy() - ref_boxes).max()))
        score_diff = max(score_diff, float(np.abs(scores.numpy() - ref_scores).max()))
        start += n
    assert start == len(tf_boxes)
    print(f'decoded boxes max abs diff {box_diff} px, scores {score_diff}')
    assert box_diff <= 1e-3 and score_diff <= TOLERANCE  # boxes in pixels up to 128


@pytest.mark.slow
def test_checkpoint_with_head_converts_in_one_command(tf_reference, converted, tmp_path):
    """Trainer-style checkpoint (model/_backbone, model/_head) -> .pth via the CLI."""
    _, _, expected, _ = converted
    out = str(tmp_path / 'retinanet49S_tf.pth')
    proc = subprocess.run(
        [sys.executable, CONVERTER, osp.dirname(reference(tf_reference)['ckpt']), out,
         '--arch', '49S', '--tf-python', TF_PYTHON], cwd=REPO, capture_output=True,
        text=True, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES=''))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    state = torch.load(out, map_location='cpu', weights_only=True)['state_dict']
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


@pytest.mark.slow
def test_all_classes_option_keeps_tf_columns(converted, tf_reference):
    arrays, _, _, _ = converted
    state = conv.convert_npz_arrays(arrays, {}, '49S', head_options=dict(classes='all'))
    assert state['bbox_head.retina_cls.weight'].shape[0] == 9 * 91
    with pytest.raises(ValueError, match="classes='bogus'; valid choices: auto, coco80, all"):
        conv.convert_npz_arrays(arrays, {}, '49S', head_options=dict(classes='bogus'))


def test_anchor_permutation_matches_mmdet_and_tf_anchor_order():
    """Without TF: our AnchorGenerator's base anchors, reordered by the permutation, are TF's
    (scale-major, aspect = width / height) for both of mmdet's orders."""
    from mmdet.models.task_modules.prior_generators import AnchorGenerator

    stride, tf_ratios, num_scales, size = 16, [0.5, 1.0, 2.0], 3, 3.0
    tf_boxes = []
    for s in range(num_scales):
        for a in tf_ratios:
            base = size * stride * 2 ** (s / num_scales)
            w, h = base * a ** 0.5, base / a ** 0.5
            tf_boxes.append([stride / 2 - w / 2, stride / 2 - h / 2,
                             stride / 2 + w / 2, stride / 2 + h / 2])
    tf_boxes = np.array(tf_boxes)
    for scale_major in (True, False):
        gen = AnchorGenerator(strides=[stride], ratios=[0.5, 1.0, 2.0], octave_base_scale=3,
                              scales_per_octave=3, center_offset=0.5, scale_major=scale_major)
        ours = gen.base_anchors[0].numpy()
        perm = conv.anchor_permutation(num_scales, tf_ratios, [0.5, 1.0, 2.0], scale_major)
        np.testing.assert_allclose(ours, tf_boxes[perm], atol=1e-4)
    # TF's exact order: scale-major, and height/width ratios listed as TF's 1 / aspect
    assert conv.anchor_permutation(3, tf_ratios, [2.0, 1.0, 0.5], False) == list(range(9))
    with pytest.raises(ValueError, match='ratio 3.0'):
        conv.anchor_permutation(3, tf_ratios, [3.0, 1.0, 2.0])


def test_coco80_ids():
    assert len(conv.COCO80_IDS) == 80 and conv.COCO80_IDS[:12] == tuple(range(1, 12)) + (13,)
    assert conv.COCO80_IDS[-1] == 90
    assert json.dumps(conv.class_indices(5)) == json.dumps([0, 1, 2, 3, 4])
