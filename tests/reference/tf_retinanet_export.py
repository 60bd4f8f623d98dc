"""Reference outputs of TF Model Garden's RetinaNet-SpineNet for the parity test (runs in
.venv-tf).

Builds ``official/vision``'s ``RetinaNetModel``: a SpineNet backbone (the converter's
:func:`tf_build_spinenet`, so the Keras names are the ones the converter expects), no decoder,
a ``RetinaNetHead`` (shared tower convs, a BN per level) and a ``MultilevelDetectionGenerator``
without NMS, so the model also returns TF's decoded boxes and scores. Weights are random
(kernels rescaled so that the raw outputs are O(1) and box deltas O(0.3); BN statistics as in
``tf_spinenet_export.py``), the model runs in inference mode on a fixed random input, and one
``.npz`` is written holding:

- the backbone variables under their TF names (as ``tf_spinenet_export.py``) and the head's
  under ``head/<layer>/<variable>`` (the converter's :data:`HEAD_PREFIX` layout);
- ``__input__`` (NHWC), ``__cls_{level}__`` / ``__box_{level}__`` (TF's raw head outputs,
  NHWC), ``__anchors_{level}__`` (TF's anchor boxes, (H, W, A * 4) in y1 x1 y2 x2),
  ``__decoded_boxes__`` ((B, N, 4), y1 x1 y2 x2) and ``__decoded_scores__`` ((B, N,
  num_classes - 1): TF drops the background column);
- ``__meta__``: JSON of the settings (anchor and head options, TF's ``box_coder_weights``).

With ``--ckpt-out PREFIX`` the model is also saved as an object-based checkpoint laid out as a
Model Garden trainer writes it (``model/_backbone/...``, ``model/_head/...``). With
``--trainer-ckpt DIR`` it is written exactly the way the Model Garden trainer does
(``official/core/train_lib`` / ``base_trainer``): ``tf.train.Checkpoint(global_step, model,
optimizer, backbone, head)`` saved by a ``tf.train.CheckpointManager`` into DIR, after one SGD
momentum step with zero gradients so the optimizer's slot variables exist (the weights are
unchanged by it).

Usage::

    .venv-tf/bin/python tests/reference/tf_retinanet_export.py --arch 49S --size 128 \\
        --num-filters 128 --out retinanet49S_ref.npz --ckpt-out ckpt/ckpt-1
"""
import argparse
import json
import os
import os.path as osp
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np  # noqa: E402

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from tf_spinenet_export import load_converter, randomise  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--arch', default='49S', help='SpineNet arch')
    p.add_argument('--size', type=int, default=128, help='square input size')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--activation', default='swish', choices=('relu', 'swish'))
    p.add_argument('--num-convs', type=int, default=4)
    p.add_argument('--num-filters', type=int, default=128)
    p.add_argument('--num-classes', type=int, default=91)
    p.add_argument('--num-scales', type=int, default=3)
    p.add_argument('--aspect-ratios', type=float, nargs='+', default=[0.5, 1.0, 2.0])
    p.add_argument('--anchor-size', type=float, default=3.0)
    p.add_argument('--ckpt-out', help='also write a TF object-based checkpoint to this prefix')
    p.add_argument('--trainer-ckpt', help="also write a checkpoint as Model Garden's trainer "
                   'does (CheckpointManager) into this directory')
    p.add_argument('--out', required=True, help='.npz to write')
    return p.parse_args(argv)


def randomise_head(head, rng):
    """Kernels ~ N(0, g / sqrt(fan_in)) (towers g=1.4, classifier 1, box regressor 0.3),
    biases ~ N(0, 0.1); TF's own initialisers would make the outputs constant. A separable
    conv's depthwise kernel ~ N(0, 1 / sqrt(kh * kw)) and its pointwise kernel as a kernel."""
    for layers, gain in ((head._cls_convs + head._box_convs, 1.4), ([head._classifier], 1.0),
                         ([head._box_regressor], 0.3)):
        for layer in layers:
            if hasattr(layer, 'depthwise_kernel'):  # SeparableConv2D
                shape = layer.depthwise_kernel.shape
                layer.depthwise_kernel.assign(rng.normal(
                    0, 1 / np.sqrt(shape[0] * shape[1]), shape).astype(np.float32))
                kernel = layer.pointwise_kernel
            else:
                kernel = layer.kernel
            shape = kernel.shape
            fan_in = int(np.prod(shape[:-1]))
            kernel.assign(rng.normal(0, gain / np.sqrt(fan_in), shape).astype(np.float32))
            layer.bias.assign(rng.normal(0, 0.1, shape[-1]).astype(np.float32))


def main(argv=None):
    args = parse_args(argv)
    conv = load_converter()
    import tensorflow as tf
    import tf_keras

    from official.vision.modeling import retinanet_model
    from official.vision.modeling.heads import dense_prediction_heads
    from official.vision.modeling.layers import detection_generator
    from official.vision.ops import anchor

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf_keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    min_level, max_level = 3, 7
    backbone, _ = conv.tf_build_spinenet(args.arch, min_level, max_level,
                                         activation=args.activation, input_size=args.size)
    num_anchors = args.num_scales * len(args.aspect_ratios)
    head = dense_prediction_heads.RetinaNetHead(
        min_level=min_level, max_level=max_level, num_classes=args.num_classes,
        num_anchors_per_location=num_anchors, num_convs=args.num_convs,
        num_filters=args.num_filters, activation=args.activation)
    generator = detection_generator.MultilevelDetectionGenerator(apply_nms=False)
    model = retinanet_model.RetinaNetModel(
        backbone, None, head, generator, min_level=min_level, max_level=max_level,
        num_scales=args.num_scales, aspect_ratios=args.aspect_ratios,
        anchor_size=args.anchor_size)
    image = rng.normal(size=(args.batch, args.size, args.size, 3)).astype(np.float32)
    image_shape = tf.constant([[args.size, args.size]] * args.batch, dtype=tf.float32)
    model(tf.constant(image), image_shape=image_shape, training=False)  # builds the head
    randomise(model, rng, tf_keras)
    randomise_head(head, rng)
    out = model(tf.constant(image), image_shape=image_shape, training=False)
    anchors = anchor.Anchor(min_level, max_level, args.num_scales, args.aspect_ratios,
                            args.anchor_size, (args.size, args.size)).multilevel_boxes

    arrays = conv.tf_variables(backbone)
    arrays.update(conv.tf_retinanet_head_arrays(head))
    extra = dict(__input__=image,
                 __decoded_boxes__=out['decoded_boxes'].numpy()[:, :, 0, :],
                 __decoded_scores__=out['decoded_box_scores'].numpy())
    for level in range(min_level, max_level + 1):
        extra[f'__cls_{level}__'] = out['cls_outputs'][str(level)].numpy()
        extra[f'__box_{level}__'] = out['box_outputs'][str(level)].numpy()
        extra[f'__anchors_{level}__'] = anchors[str(level)].numpy()
    meta = dict(arch=args.arch, min_level=min_level, max_level=max_level, legacy=False,
                weighted_fusion=False, activation=args.activation, size=args.size,
                seed=args.seed, num_convs=args.num_convs, num_filters=args.num_filters,
                num_classes=args.num_classes, num_scales=args.num_scales,
                aspect_ratios=args.aspect_ratios, anchor_size=args.anchor_size,
                box_coder_weights=generator.get_config()['box_coder_weights'],
                tensorflow=tf.__version__)
    if args.ckpt_out:
        tf.train.Checkpoint(model=model).write(args.ckpt_out)
    if args.trainer_ckpt:
        optimizer = tf_keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
        trainable = model.trainable_variables
        optimizer.apply_gradients([(tf.zeros_like(v), v) for v in trainable])  # makes slots
        global_step = tf.Variable(231000, dtype=tf.int64, name='global_step')
        ckpt = tf.train.Checkpoint(global_step=global_step, model=model, optimizer=optimizer,
                                   backbone=model.backbone, head=model.head)
        tf.train.CheckpointManager(ckpt, args.trainer_ckpt, max_to_keep=1).save(
            checkpoint_number=global_step)
    conv.save_npz(args.out, arrays, meta, extra=extra)
    print(json.dumps(dict(meta, out=args.out, num_arrays=len(arrays))))


if __name__ == '__main__':
    sys.exit(main())
