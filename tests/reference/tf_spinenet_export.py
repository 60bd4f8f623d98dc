"""Reference outputs of TF Model Garden's SpineNet for the parity tests (runs in .venv-tf).

Builds TF SpineNet (``official/vision``, or ``official/legacy/detection`` with ``--legacy``),
gives it random weights and random BN statistics, runs it in inference mode on a fixed random
input and writes one ``.npz`` holding:

- every variable under its TF name (``conv2d_3/kernel``, ``bottleneck_block/
  batch_normalization_1/moving_variance``, ``block4_fusion2``, ...); ``__order__`` lists
  them in creation order;
- ``__input__``: the input image batch, NHWC float32;
- ``__out_{level}__``: the P-level outputs, NHWC float32;
- ``__meta__``: JSON of the settings and the TF version.

The variables are named and laid out exactly as the converter's TF stage
(``mmdet_spine/converters/tf_model_garden_reader.py``) writes them from a real checkpoint, so the parity test also covers that converter. With
``--ckpt-out PREFIX`` the model is also saved as an object-based TF checkpoint laid out like a
Model Garden trainer's (the backbone reachable as ``backbone`` and as ``model/_backbone``).

Usage::

    .venv-tf/bin/python tests/reference/tf_spinenet_export.py --arch 49S --min-level 3 \\
        --max-level 7 --size 128 --seed 0 --out spinenet49S_ref.npz
    .venv-tf/bin/python tests/reference/tf_spinenet_export.py --cases cases.json

(``--cases``: several exports in one process, TensorFlow's ~10 s import paid once.)

Kernels keep TF's initialiser (seeded); every BN gets gamma ~ U(0.7, 1.3), beta ~ N(0, 0.1),
moving mean ~ N(0, 0.1) and moving variance ~ U(0.7, 1.4), which keeps the outputs O(1) (BN
statistics measured on a batch are degenerate at P6/P7 of a small input and blow the outputs
up) while a swapped or ignored statistic still shows.
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
READER = osp.join(REPO, 'mmdet_spine', 'converters', 'tf_model_garden_reader.py')


def load_converter():
    """The converter's TF stage (stdlib + numpy + TF only), loaded by path."""
    spec = importlib.util.spec_from_file_location('tf_model_garden_reader', READER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_size(text):
    parts = [int(p) for p in str(text).lower().split('x')]
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f'--size {text!r}: give N or HxW')
    return tuple(parts)


def build_parser(conv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--arch', default='49S', help='49S, 49, 96, 143, 143L or 190')
    p.add_argument('--min-level', type=int, default=3)
    p.add_argument('--max-level', type=int, default=7)
    p.add_argument('--activation', default='relu', choices=('relu', 'swish'))
    p.add_argument('--size', type=parse_size, default=(128, 128), help='N or HxW')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--legacy', action='store_true', help='official/legacy/detection SpineNet')
    p.add_argument('--weighted-fusion', action='store_true',
                   help='legacy SpineNet with weighted fusion (random fusion weights)')
    p.add_argument('--ckpt-out', help='also write a TF object-based checkpoint to this prefix')
    p.add_argument('--out', help='.npz to write')
    p.add_argument('--cases', help='JSON file: a list of {option: value} dicts (the options '
                   'above without dashes, e.g. {"arch": "49", "min_level": 2, "out": "a.npz"}); '
                   'exports them all in one process (TensorFlow imports once)')
    return p


def case_argv(case):
    """CLI tokens of one --cases entry."""
    argv = []
    for key, value in case.items():
        flag = '--' + key.replace('_', '-')
        if isinstance(value, bool):
            argv += [flag] if value else []
        else:
            argv += [flag, str(value)]
    return argv


def parse_args(argv=None):
    """Return the list of export jobs (argparse namespaces) and the converter module."""
    conv = load_converter()
    parser = build_parser(conv)
    args = parser.parse_args(argv)
    if args.cases:
        with open(args.cases) as f:
            jobs = [parser.parse_args(case_argv(c)) for c in json.load(f)]
    else:
        jobs = [args]
    for job in jobs:
        if not job.out:
            parser.error('--out is required (in every --cases entry too)')
        if job.weighted_fusion:
            job.legacy = True
    return jobs, conv


def randomise(model, rng, tf_keras):
    """Random BN affine parameters and statistics (see the module docstring)."""
    for bn in model.submodules:
        if isinstance(bn, tf_keras.layers.BatchNormalization):
            c = bn.gamma.shape[0]
            bn.gamma.assign(rng.uniform(0.7, 1.3, c).astype(np.float32))
            bn.beta.assign(rng.normal(0.0, 0.1, c).astype(np.float32))
            bn.moving_mean.assign(rng.normal(0.0, 0.1, c).astype(np.float32))
            bn.moving_variance.assign(rng.uniform(0.7, 1.4, c).astype(np.float32))


def tf_tables(legacy):
    """TF's architecture tables, for the test to hold ``mmdet_spine``'s to."""
    if legacy:
        from official.legacy.detection.modeling.architecture import spinenet as module
    else:
        from official.vision.modeling.backbones import spinenet as module
    return dict(scaling_map=module.SCALING_MAP,
                block_specs=[list(s[:2]) + [list(s[2]), s[3]] for s in module.SPINENET_BLOCK_SPECS],
                filter_size_map={str(k): v for k, v in module.FILTER_SIZE_MAP.items()})


def export(args, conv, tf, tf_keras):
    tf_keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    fusion_rng = np.random.default_rng(args.seed + 1)
    model, fusion = conv.tf_build_spinenet(
        args.arch, args.min_level, args.max_level, activation=args.activation,
        input_size=args.size, legacy=args.legacy, weighted_fusion=args.weighted_fusion,
        fusion_value=lambda name: fusion_rng.uniform(0.25, 1.75))
    image = rng.normal(size=(args.batch, args.size[0], args.size[1], 3)).astype(np.float32)
    randomise(model, rng, tf_keras)
    outputs = model(tf.constant(image), training=False)
    outs = {f'__out_{int(level)}__': np.asarray(v.numpy(), dtype=np.float32)
            for level, v in outputs.items()}
    arrays = conv.tf_variables(model, fusion)
    meta = dict(arch=args.arch, min_level=args.min_level, max_level=args.max_level,
                legacy=args.legacy, weighted_fusion=args.weighted_fusion,
                activation=args.activation, size=list(args.size), seed=args.seed,
                tensorflow=tf.__version__,
                trainable_params=int(sum(np.prod(v.shape) for v in model.trainable_variables)))
    meta['tf_tables'] = tf_tables(args.legacy)
    if args.ckpt_out:
        holder = tf.Module()
        holder._backbone = model
        tf.train.Checkpoint(backbone=model, model=holder).write(args.ckpt_out)
    conv.save_npz(args.out, arrays, meta, extra=dict(__input__=image, **outs))
    print(json.dumps(dict(meta, out=args.out, outputs={k: list(v.shape) for k, v in outs.items()})))


def main(argv=None):
    jobs, conv = parse_args(argv)
    import tensorflow as tf
    import tf_keras

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    for job in jobs:
        export(job, conv, tf, tf_keras)


if __name__ == '__main__':
    sys.exit(main())
