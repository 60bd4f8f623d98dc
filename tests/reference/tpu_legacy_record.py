"""Record reference outputs of tensorflow/tpu's own SpineNet code (run once, by hand).

The legacy TPU checkpoints were written by tensorflow/tpu ``models/official/detection`` (TF1,
graph mode); no installable package ships that code, so CI cannot run it. This script ran it
(a checkout of tensorflow/tpu, ``--tpu-root``, in ``.venv-tf`` with TF 2.20's
``tf.compat.v1`` graph mode and tf-keras' legacy ``tf.layers``), gave every variable the
deterministic values of ``tpu_legacy_weights.random_weights`` and recorded, per case, one
``.npz`` in ``tests/data/tpu_legacy/``:

- ``__names__`` / ``__shapes__``: every global variable the TPU code created (names as its
  checkpoints store them) and its shape, so the tests can regenerate the weights;
- ``__input__`` and the outputs in inference mode (``is_training=False``): ``__out_{level}__``
  (backbone P3-P7, NHWC), RetinaNet ``__cls_{level}__`` / ``__box_{level}__``; for Mask
  R-CNN the RPN's ``__rpn_cls_{level}__`` / ``__rpn_box_{level}__``, and the box / mask heads'
  outputs (``__frcnn_cls__``, ``__frcnn_box__``, ``__mask_logits__``) for fixed random RoI
  features (``__box_rois__`` 7x7, ``__mask_rois__`` 14x14, ``__mask_classes__``); for
  classification ``__logits__``; for ``roi_extraction`` (no variables) the inputs and outputs
  of its ``multilevel_crop_and_resize`` (``__feat_{level}__``, ``__boxes__``, ``__roi_7__``,
  ``__roi_14__``);
- ``__meta__``: the case, the tensorflow/tpu commit, the TF version.

Usage::

    .venv-tf/bin/python tests/reference/tpu_legacy_record.py --tpu-root /path/to/tpu \\
        --tpu-commit eda17a4 --out-dir tests/data/tpu_legacy
"""
import argparse
import json
import os
import os.path as osp
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import numpy as np  # noqa: E402

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from tpu_legacy_weights import random_weights  # noqa: E402

#: name -> case. RetinaNet recipes: BN momentum 0.997 / eps 1e-4, swish (the TPU yamls).
CASES = {
    'retinanet_spinenet49S': dict(arch='49S', size=128, head='retinanet', num_filters=128,
                                  num_convs=4, num_classes=91, activation='swish',
                                  momentum=0.997, epsilon=1e-4, seed=0),
    'spinenet96': dict(arch='96', size=128, head='none', activation='swish',
                       momentum=0.997, epsilon=1e-4, seed=1),
    # SpineNet-MBConv RetinaNet recipe: separable head, 48 filters (spinenet-mbconv49 yaml)
    'retinanet_spinenet_mbconv49': dict(arch='49', family='mbconv', size=128, head='retinanet',
                                        num_filters=48, num_convs=4, num_classes=91,
                                        separable=True, activation='swish', momentum=0.997,
                                        epsilon=1e-4, seed=2),
    # Mask R-CNN recipe: relu, BN 0.99 / 1e-3, SyncBN (the spinenet*_mrcnn yamls); heads made
    # narrow to stay fast (widths are options of both sides), 3 fixed RoIs per head.
    'mask_rcnn_spinenet49S': dict(arch='49S', size=128, head='mask_rcnn', num_classes=91,
                                  rpn_filters=128, box_convs=4, box_filters=64, fcs=1,
                                  fc_dims=256, mask_convs=4, mask_filters=64, num_rois=3,
                                  activation='relu', momentum=0.99, epsilon=1e-3,
                                  sync_bn=True, seed=3),
    # ImageNet classification recipe (spinenet*_classification yamls): BN 0.9 / 1e-5, swish,
    # all levels upsampled to P3 and averaged, 1001 classes (0 = background)
    'classification_spinenet49S': dict(arch='49S', size=128, head='classification',
                                       num_classes=1001, activation='swish', momentum=0.9,
                                       epsilon=1e-5, seed=4),
    # Mask R-CNN RoI features (ops/spatial_transform_ops.multilevel_crop_and_resize): random
    # P3-P7 of a 1024 px image, boxes of 24-900 px (every level), 7x7 and 14x14 crops
    'roi_extraction': dict(size=1024, channels=8, num_boxes=10, head='roi', seed=5),
}


def roi_extraction(case, tf, spatial_transform_ops):
    """Inputs and outputs of the TPU's multilevel_crop_and_resize (no variables)."""
    tf.reset_default_graph()
    rng = np.random.default_rng(case['seed'] + 100)
    size, c, n = case['size'], case['channels'], case['num_boxes']
    feats = {lv: rng.normal(size=(1, size // 2**lv, size // 2**lv, c)).astype(np.float32)
             for lv in range(3, 8)}
    sides = np.geomspace(24, 900, n)
    aspect = rng.uniform(0.6, 1.6, n)
    h, w = sides * aspect ** 0.5, sides / aspect ** 0.5
    y0 = rng.uniform(0, np.maximum(size - 1 - h, 0))
    x0 = rng.uniform(0, np.maximum(size - 1 - w, 0))
    boxes = np.stack([y0, x0, np.minimum(y0 + h, size - 1), np.minimum(x0 + w, size - 1)], 1)
    boxes = boxes.astype(np.float32)[None]  # (1, N, 4) y1 x1 y2 x2, image pixels
    fetch = {}
    for out in (7, 14):
        fetch[f'__roi_{out}__'] = spatial_transform_ops.multilevel_crop_and_resize(
            {lv: tf.constant(f) for lv, f in feats.items()}, tf.constant(boxes), out)
    with tf.Session() as sess:
        outputs = sess.run(fetch)
    outputs.update({f'__feat_{lv}__': f for lv, f in feats.items()}, __boxes__=boxes)
    return outputs


def build_and_run(case, tf, modules):
    spinenet, spinenet_mbconv, nn_ops, heads = modules
    tf.reset_default_graph()
    rng = np.random.default_rng(case['seed'] + 100)
    image = rng.normal(size=(1, case['size'], case['size'], 3)).astype(np.float32)
    extra = {}
    bn_act = nn_ops.BatchNormActivation(momentum=case['momentum'], epsilon=case['epsilon'],
                                        use_sync_bn=case.get('sync_bn', False),
                                        activation=case['activation'])
    builder = (spinenet_mbconv.spinenet_mbconv_builder if case.get('family') == 'mbconv'
               else spinenet.spinenet_builder)
    backbone = builder(case['arch'], activation=case['activation'],
                       batch_norm_activation=bn_act)
    feats = backbone(tf.constant(image), is_training=False)
    fetch = {f'__out_{level}__': feats[level] for level in range(3, 8)}
    if case['head'] == 'retinanet':
        head = heads.RetinanetHead(3, 7, case['num_classes'], 9, num_convs=case['num_convs'],
                                   num_filters=case['num_filters'],
                                   use_separable_conv=case.get('separable', False),
                                   activation=case['activation'], batch_norm_activation=bn_act)
        cls, box = head(feats, is_training=False)
        for level in range(3, 8):
            fetch[f'__cls_{level}__'] = cls[level]
            fetch[f'__box_{level}__'] = box[level]
    elif case['head'] == 'mask_rcnn':
        rpn = heads.RpnHead(3, 7, 3, num_convs=1, num_filters=case['rpn_filters'],
                            activation=case['activation'], use_batch_norm=True,
                            batch_norm_activation=bn_act)
        scores, boxes = rpn(feats, is_training=False)
        for level in range(3, 8):
            fetch[f'__rpn_cls_{level}__'] = scores[level]
            fetch[f'__rpn_box_{level}__'] = boxes[level]
        channels = feats[3].shape.as_list()[-1]
        n = case['num_rois']
        box_rois = rng.normal(size=(1, n, 7, 7, channels)).astype(np.float32)
        mask_rois = rng.normal(size=(1, n, 14, 14, channels)).astype(np.float32)
        classes = np.array([[1, 17, 90][:n]], dtype=np.int32)
        extra.update(__box_rois__=box_rois, __mask_rois__=mask_rois, __mask_classes__=classes)
        frcnn = heads.FastrcnnHead(case['num_classes'], num_convs=case['box_convs'],
                                   num_filters=case['box_filters'], num_fcs=case['fcs'],
                                   fc_dims=case['fc_dims'], activation=case['activation'],
                                   use_batch_norm=True, batch_norm_activation=bn_act)
        cls, box = frcnn(tf.constant(box_rois), is_training=False)
        fetch.update(__frcnn_cls__=cls, __frcnn_box__=box)
        mask = heads.MaskrcnnHead(case['num_classes'], 28, num_convs=case['mask_convs'],
                                  num_filters=case['mask_filters'],
                                  activation=case['activation'], use_batch_norm=True,
                                  batch_norm_activation=bn_act)
        fetch['__mask_logits__'] = mask(tf.constant(mask_rois), tf.constant(classes),
                                        is_training=False)
    elif case['head'] == 'classification':
        head = heads.ClassificationHead(case['num_classes'], aggregation='all',
                                        batch_norm_activation=bn_act)
        fetch['__logits__'] = head(feats, is_training=False)
    variables = tf.global_variables()
    shapes = {v.op.name: v.shape.as_list() for v in variables}
    values = random_weights(shapes, case['seed'])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for v in variables:
            v.load(values[v.op.name], sess)
        outputs = sess.run(fetch)
    outputs.update(extra)
    return image, shapes, outputs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--tpu-root', required=True, help='a checkout of tensorflow/tpu')
    p.add_argument('--tpu-commit', required=True, help='its commit (recorded)')
    p.add_argument('--out-dir', required=True)
    p.add_argument('--cases', nargs='+', default=list(CASES))
    args = p.parse_args(argv)
    sys.path.insert(0, osp.join(args.tpu_root, 'models', 'official', 'detection'))
    import tensorflow.compat.v1 as tf

    tf.disable_eager_execution()
    from modeling.architecture import (heads, nn_ops, spinenet,  # tensorflow/tpu's code
                                       spinenet_mbconv)

    from ops import spatial_transform_ops

    os.makedirs(args.out_dir, exist_ok=True)
    for name in args.cases:
        case = CASES[name]
        if case['head'] == 'roi':
            meta = dict(case=name, **case, tpu_commit=args.tpu_commit,
                        tensorflow=tf.__version__)
            path = osp.join(args.out_dir, f'{name}.npz')
            np.savez_compressed(path, __meta__=np.array(json.dumps(meta)),
                                **roi_extraction(case, tf, spatial_transform_ops))
            print(f'{name} -> {path}')
            continue
        image, shapes, outputs = build_and_run(case, tf, (spinenet, spinenet_mbconv, nn_ops,
                                                            heads))
        meta = dict(case=name, **case, tpu_commit=args.tpu_commit, tensorflow=tf.__version__)
        names = sorted(shapes)
        path = osp.join(args.out_dir, f'{name}.npz')
        np.savez_compressed(path, __names__=np.array(names),
                            __shapes__=np.array(json.dumps([shapes[n] for n in names])),
                            __input__=image, __meta__=np.array(json.dumps(meta)),
                            **{k: np.asarray(v, np.float32) for k, v in outputs.items()})
        print(f'{name}: {len(names)} variables -> {path}')


if __name__ == '__main__':
    sys.exit(main())
