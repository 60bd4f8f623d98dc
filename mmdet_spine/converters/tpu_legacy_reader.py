"""TF stage of the legacy tensorflow/tpu converter: a name-based TF1 checkpoint -> ``.npz``.

The checkpoints of tensorflow/tpu's ``models/official/detection`` (SpineNet RetinaNet, Mask
R-CNN and ImageNet classifiers, written by a TF1 ``TPUEstimator``) are *name-based*: each
variable is stored under its graph name (``spinenet/sub_policy3/scale_permuted_block_5/
conv2d_1/kernel``, ``retinanet/class_net/class-predict/bias``, ...). Reading them needs no
model: this stage lists the checkpoint with ``tf.train.load_checkpoint`` and writes every
model variable to an ``.npz`` under its checkpoint name, skipping the optimizer's
``.../Momentum`` slots and ``global_step`` (what TF Model Garden's
``official/legacy/detection/modeling/checkpoint_utils.py`` skips too). The mapping onto
mmdet-spine's modules is the torch stage's job (:mod:`mmdet_spine.converters.tpu_legacy`).

Run by a TensorFlow interpreter, by path, never imported by mmdet-spine's own interpreter; it
imports only the standard library, numpy, TensorFlow and its sibling
``tf_model_garden_reader.py`` (loaded by path, for the checkpoint-path and ``.npz`` helpers)::

    $TF_PY -P .../mmdet_spine/converters/tpu_legacy_reader.py spinenet-49-best/ out.npz

Args (command line): ``SRC`` (checkpoint prefix, e.g. ``model.ckpt-231500``, or the
directory holding it), ``DST`` (``.npz``), ``--list`` (print names and shapes only).
"""
import argparse
import importlib.util
import os
import os.path as osp
import sys

import numpy as np


def _sibling(name):
    """A sibling module of this file, loaded by path (the package itself imports torch)."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'_mmdet_spine_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_tmg = _sibling('tf_model_garden_reader')
CheckpointMismatch = _tmg.CheckpointMismatch
resolve_checkpoint = _tmg.resolve_checkpoint
save_npz = _tmg.save_npz

#: Checkpoint entries that are not model weights (optimizer state, step counter).
SKIPPED_SUFFIXES = ('/Momentum', 'global_step')


def is_model_variable(name):
    """False for the optimizer's momentum slots and the step counter."""
    return not name.endswith(SKIPPED_SUFFIXES)


def read_name_based(path):
    """``(arrays, skipped)``: the model variables of a name-based checkpoint by name (float
    arrays as float32) and the names that were skipped.

    Raises:
        CheckpointMismatch: The checkpoint is object-based (a TF2 Model Garden checkpoint:
            use ``spinenet_tf2mmdet``) or holds no variables.
    """
    import tensorflow as tf

    reader = tf.train.load_checkpoint(path)
    shapes = reader.get_variable_to_shape_map()
    if any('/.ATTRIBUTES/' in k for k in shapes):
        raise CheckpointMismatch(f'{path} is an object-based (TF2) checkpoint; convert TF Model '
                                 'Garden checkpoints with spinenet_tf2mmdet')
    arrays, skipped = {}, []
    for name in sorted(shapes):
        if not is_model_variable(name) or name.startswith('_CHECKPOINTABLE'):
            skipped.append(name)
            continue
        value = np.asarray(reader.get_tensor(name))
        if value.dtype.kind == 'f' or value.dtype.name == 'bfloat16':
            value = value.astype(np.float32)
        arrays[name] = value
    if not arrays:
        raise CheckpointMismatch(f'{path} holds no model variables')
    return arrays, skipped


def run(args):
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import tensorflow as tf

    src = resolve_checkpoint(args.src)
    if args.list:
        reader = tf.train.load_checkpoint(src)
        for k, s in sorted(reader.get_variable_to_shape_map().items()):
            print(k, s)
        return
    arrays, skipped = read_name_based(src)
    meta = dict(format='tf-tpu-legacy', source=osp.abspath(src), tensorflow=tf.__version__,
                skipped=len(skipped))
    save_npz(args.dst, arrays, meta)
    print(f'{len(arrays)} TF variables ({len(skipped)} optimizer/step entries skipped) -> '
          f'{args.dst}')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='TF stage of the legacy tensorflow/tpu '
                                     'converter: name-based checkpoint -> .npz of variables')
    parser.add_argument('src', help='TF checkpoint (prefix or directory)')
    parser.add_argument('dst', nargs='?', help='.npz to write (not needed with --list)')
    parser.add_argument('--list', action='store_true',
                        help='print the checkpoint names and shapes, write nothing')
    args = parser.parse_args(argv)
    if not args.list and not args.dst:
        parser.error('DST (.npz) is required unless --list')
    return args


def main(argv=None):
    """Run the TF stage; an unusable checkpoint is one line on stderr, exit 2."""
    try:
        run(parse_args(argv))
    except CheckpointMismatch as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
