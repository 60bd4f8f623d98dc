"""Reference outputs of TF Model Garden's SpineNet-Mobile (backbone and RetinaNet) for the
mobile parity test (runs in .venv-tf).

In one process (TensorFlow's import and Keras' slow model builds are paid once):

- ``--backbones ARCH:ACTIVATION ...``: TF ``SpineNetMobile`` (``official/vision/modeling/
  backbones/spinenet_mobile.py``) with random weights and BN statistics
  (``tf_spinenet_export.randomise``), run in inference mode on a fixed random input;
  ``<out-dir>/mobile-<ARCH>.npz`` holds its variables by TF name, ``__input__`` (NHWC),
  ``__out_{level}__`` (NHWC) and ``__meta__`` (settings, trainable parameter count, TF's
  architecture tables).
- ``--retinanet ARCH:ACTIVATION``: TF's mobile ``RetinaNetModel``: that SpineNetMobile, no
  decoder, a ``RetinaNetHead`` with ``use_separable_conv=True`` (4 convs of the endpoints'
  width, 91 classes, 9 anchors), as ``coco_spinenet49*_mobile_tpu.yaml``; random weights
  (``tf_retinanet_export.randomise_head``); ``<out-dir>/mobile-<ARCH>-retinanet.npz`` holds the
  backbone and head variables (head as ``head/<layer>/<variable>``), the backbone outputs
  and the raw head outputs (``__cls_{level}__`` / ``__box_{level}__``), and the model's
  trainable parameter count. The model is also saved as a trainer-style checkpoint
  (``<out-dir>/ckpt/ckpt-1``, ``model/_backbone`` + ``model/_head``) and that checkpoint is
  read back by the converter's TF stage (``--family mobile``) into
  ``<out-dir>/ckpt-readback.npz``, so the checkpoint path is covered without another
  TensorFlow start.

Usage::

    .venv-tf/bin/python tests/reference/tf_spinenet_mobile_export.py --out-dir ref/ \\
        --backbones 49S:hard_swish 49:hard_swish --retinanet 49XS:swish --size 128
"""
import argparse
import json
import os
import os.path as osp
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np  # noqa: E402

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from tf_retinanet_export import randomise_head  # noqa: E402
from tf_spinenet_export import load_converter, randomise  # noqa: E402

MIN_LEVEL, MAX_LEVEL = 3, 7


def arch_activation(text):
    arch, _, activation = text.partition(':')
    if activation not in ('relu', 'swish', 'hard_swish'):
        raise argparse.ArgumentTypeError(f'{text!r}: give ARCH:ACTIVATION, activation one of '
                                         'relu, swish, hard_swish')
    return arch, activation


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out-dir', required=True)
    p.add_argument('--backbones', type=arch_activation, nargs='*', default=[])
    p.add_argument('--retinanet', type=arch_activation, help='ARCH:ACTIVATION')
    p.add_argument('--size', type=int, default=128, help='square input size')
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args(argv)


def tf_tables():
    from official.vision.modeling.backbones import spinenet_mobile as module
    return dict(scaling_map=module.SCALING_MAP,
                block_specs=[list(s[:2]) + [list(s[2]), s[3]] for s in module.SPINENET_BLOCK_SPECS],
                filter_size_map={str(k): v for k, v in module.FILTER_SIZE_MAP.items()})


def trainable(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


def outputs(endpoints):
    return {f'__out_{int(level)}__': np.asarray(v.numpy(), dtype=np.float32)
            for level, v in endpoints.items()}


def export_backbone(conv, tf, tf_keras, arch, activation, args, seed, out):
    tf_keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = conv.tf_build_spinenet_mobile(arch, MIN_LEVEL, MAX_LEVEL, activation, args.size)
    image = rng.normal(size=(1, args.size, args.size, 3)).astype(np.float32)
    randomise(model, rng, tf_keras)
    outs = outputs(model(tf.constant(image), training=False))
    meta = dict(arch=arch, family='mobile', min_level=MIN_LEVEL, max_level=MAX_LEVEL,
                legacy=False, activation=activation, size=args.size, seed=seed,
                trainable_params=trainable(model), tf_tables=tf_tables(),
                tensorflow=tf.__version__)
    conv.save_npz(out, conv.tf_variables(model), meta, extra=dict(__input__=image, **outs))
    print(json.dumps(dict(arch=arch, out=out, trainable_params=meta['trainable_params'])))


def export_retinanet(conv, tf, tf_keras, arch, activation, args, seed, out, ckpt):
    from official.vision.modeling import retinanet_model
    from official.vision.modeling.heads import dense_prediction_heads
    from official.vision.modeling.layers import detection_generator

    tf_keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    backbone = conv.tf_build_spinenet_mobile(arch, MIN_LEVEL, MAX_LEVEL, activation, args.size)
    num_filters = backbone.get_config()['endpoints_num_filters']
    head = dense_prediction_heads.RetinaNetHead(
        min_level=MIN_LEVEL, max_level=MAX_LEVEL, num_classes=91, num_anchors_per_location=9,
        num_convs=4, num_filters=num_filters, use_separable_conv=True, activation=activation)
    generator = detection_generator.MultilevelDetectionGenerator(apply_nms=False)
    model = retinanet_model.RetinaNetModel(backbone, None, head, generator, min_level=MIN_LEVEL,
                                           max_level=MAX_LEVEL, num_scales=3,
                                           aspect_ratios=[0.5, 1.0, 2.0], anchor_size=3.0)
    image = rng.normal(size=(1, args.size, args.size, 3)).astype(np.float32)
    image_shape = tf.constant([[args.size, args.size]], dtype=tf.float32)
    model(tf.constant(image), image_shape=image_shape, training=False)  # builds the head
    randomise(model, rng, tf_keras)
    randomise_head(head, rng)
    out_tf = model(tf.constant(image), image_shape=image_shape, training=False)
    extra = dict(__input__=image, **outputs(backbone(tf.constant(image), training=False)))
    for level in range(MIN_LEVEL, MAX_LEVEL + 1):
        extra[f'__cls_{level}__'] = out_tf['cls_outputs'][str(level)].numpy()
        extra[f'__box_{level}__'] = out_tf['box_outputs'][str(level)].numpy()
    arrays = conv.tf_variables(backbone)
    arrays.update(conv.tf_retinanet_head_arrays(head))
    meta = dict(arch=arch, family='mobile', min_level=MIN_LEVEL, max_level=MAX_LEVEL,
                legacy=False, activation=activation, size=args.size, seed=seed,
                num_filters=num_filters, num_classes=91, separable=True,
                trainable_params=trainable(model), backbone_params=trainable(backbone),
                tensorflow=tf.__version__)
    tf.train.Checkpoint(model=model).write(ckpt)
    conv.save_npz(out, arrays, meta, extra=extra)
    print(json.dumps(dict(arch=arch, out=out, trainable_params=meta['trainable_params'])))


def main(argv=None):
    args = parse_args(argv)
    conv = load_converter()
    import tensorflow as tf
    import tf_keras

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    os.makedirs(args.out_dir, exist_ok=True)
    for k, (arch, activation) in enumerate(args.backbones):
        export_backbone(conv, tf, tf_keras, arch, activation, args, args.seed + k,
                        osp.join(args.out_dir, f'mobile-{arch}.npz'))
    if args.retinanet:
        arch, activation = args.retinanet
        ckpt = osp.join(args.out_dir, 'ckpt', 'ckpt-1')
        export_retinanet(conv, tf, tf_keras, arch, activation, args, args.seed + 100,
                         osp.join(args.out_dir, f'mobile-{arch}-retinanet.npz'), ckpt)
        # the converter's TF stage on the checkpoint, in this process
        conv.main([osp.dirname(ckpt), osp.join(args.out_dir, 'ckpt-readback.npz'),
                   '--arch', arch, '--family', 'mobile'])


if __name__ == '__main__':
    sys.exit(main())
