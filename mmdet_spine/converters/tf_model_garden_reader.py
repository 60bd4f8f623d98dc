"""TF stage of the TF Model Garden converter: read a SpineNet checkpoint into an ``.npz``.

Run by a TensorFlow interpreter (one with ``tensorflow`` and ``tf-models-official``; see
``mmdet_spine/requirements/tf_reference.txt`` in the installed package), never imported by
mmdet-spine's own interpreter. It imports only the standard library, numpy and TensorFlow /
TF Model Garden, so it runs straight from an installed wheel::

    TF_PY=/path/to/tf-venv/bin/python
    $TF_PY -P "$(python -c 'import mmdet_spine.converters as c, os; print(os.path.dirname(c.__file__))')/tf_model_garden_reader.py" \
        retinanet-spinenet49/ckpt-231000 spinenet49_tf.npz --arch 49

(``-P``: nothing but the standard paths on ``sys.path``; the file is run by path rather than
with ``-m mmdet_spine...`` because importing the ``mmdet_spine`` package would import torch
and mmdet into the TensorFlow interpreter.) :func:`mmdet_spine.converters.tf_model_garden.
convert_tf_checkpoint` runs it for you, and ``tools/model_converters/spinenet_tf2mmdet.py``
and the model zoo call that.

What it does: restore the checkpoint into a freshly built TF SpineNet / SpineNetMobile of the
given architecture (restoring into a rebuilt model leaves the bookkeeping of TF's object graph
to TF), and write every backbone variable under its TF variable name (``conv2d_12/kernel``,
``bottleneck_block_3/batch_normalization_1/moving_mean``, ...), plus a TF ``RetinaNetHead``'s
variables when the checkpoint has one (``head/classnet-conv_0/kernel``, ...), with a JSON
``__meta__`` record. When the checkpoint does not fit the requested model, it says in one line
which flag is probably wrong and what the checkpoint holds (stem kernel shape, number of
blocks, levels of its endpoints).

Args (command line): ``SRC`` (checkpoint prefix or directory), ``DST`` (``.npz``),
``--arch``, ``--family spinenet|mobile``, ``--min-level``, ``--max-level``, ``--legacy``,
``--weighted-fusion``, ``--no-head``, ``--list``.
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
from collections import OrderedDict

import numpy as np

STEM_CHANNELS = 64
META_KEY = '__meta__'
#: Backbone families: 'spinenet' (TF ``spinenet.py``) and 'mobile' (``spinenet_mobile.py``).
FAMILIES = ('spinenet', 'mobile')


class CheckpointMismatch(Exception):
    """The checkpoint does not fit the requested model; printed as one line (exit 2)."""


def check_arch(arch, valid, family='spinenet'):
    """``arch`` as a string if it is a key of TF's ``SCALING_MAP`` ``valid``."""
    arch = str(arch)
    if arch not in valid:
        name = 'SpineNet-Mobile' if family == 'mobile' else 'SpineNet'
        other = {'spinenet': ('49XS',), 'mobile': ('96', '143', '143L', '190')}[family]
        hint = ''
        if arch in other:
            hint = (' (a SpineNet-Mobile arch: add --family mobile)' if family == 'spinenet'
                    else ' (a SpineNet arch: use --family spinenet)')
        raise CheckpointMismatch(f'--arch {arch} is not a TF {name} architecture; valid '
                                 f"choices: {', '.join(valid)}{hint}")
    return arch


def tf_build_spinenet(arch, min_level=3, max_level=7, activation='relu', input_size=256,
                      legacy=False, weighted_fusion=False, fusion_value=None):
    """Build TF Model Garden's SpineNet with fresh Keras names (counters start at zero).

    Args:
        arch (str): A key of TF's ``SCALING_MAP`` ('49S', '49', '96', '143', '143L', '190';
            the legacy builder has no '143L').
        min_level, max_level (int): Output levels.
        activation (str): 'relu' or 'swish'.
        input_size (int | tuple): Static (H, W) of the Keras input.
        legacy (bool): Use ``official/legacy/detection`` (15 block specs) instead of
            ``official/vision``.
        weighted_fusion (bool): Legacy only: build with ``weighted_fusion=True``.
        fusion_value (callable, optional): ``fusion_value(name) -> float`` gives the initial
            value of each ``block{i}_fusion{j}`` scalar (default 1.0, TF's).

    Returns:
        tuple: (model, fusion) where ``fusion`` maps the fusion scalars' names to values.
    """
    import tensorflow as tf
    import tf_keras

    from official.legacy.detection.modeling.architecture import spinenet as legacy_spinenet
    from official.vision.modeling.backbones import spinenet as tf_spinenet

    if weighted_fusion and not legacy:
        raise CheckpointMismatch('--weighted-fusion needs --legacy (official/vision builds '
                         'SpineNet with plain sums)')
    scaling = (legacy_spinenet if legacy else tf_spinenet).SCALING_MAP
    scaling = scaling[check_arch(arch, scaling)]
    hw = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    tf_keras.backend.clear_session()
    kwargs = dict(input_specs=tf_keras.layers.InputSpec(shape=[None, hw[0], hw[1], 3]),
                  min_level=min_level, max_level=max_level, activation=activation, **scaling)
    fusion = OrderedDict()
    if not legacy:
        return tf_spinenet.SpineNet(**kwargs), fusion

    class _Recorder:
        """Stands in for the legacy module's ``tf`` while it builds, recording the fusion
        scalars it creates (they are outside Keras' tracking)."""

        def __getattr__(self, name):
            return getattr(tf, name)

        @staticmethod
        def Variable(initial_value, name=None, **kw):  # noqa: N802 (TF's name)
            value = float(initial_value if fusion_value is None else fusion_value(name))
            fusion[name] = value
            return tf.Variable(value, name=name, **kw)

    class _WeightedSpineNet(legacy_spinenet.SpineNet):
        def _build_scale_permuted_network(self, net, input_width, weighted_fusion=False):
            return super()._build_scale_permuted_network(net, input_width, weighted_fusion=True)

    cls = _WeightedSpineNet if weighted_fusion else legacy_spinenet.SpineNet
    saved_tf = legacy_spinenet.tf
    legacy_spinenet.tf = _Recorder()
    try:
        model = cls(**kwargs)
    finally:
        legacy_spinenet.tf = saved_tf
    return model, fusion


def tf_build_spinenet_mobile(arch, min_level=3, max_level=7, activation='swish',
                             input_size=256):
    """Build TF Model Garden's SpineNetMobile with fresh Keras names.

    Args:
        arch (str): A key of TF's mobile ``SCALING_MAP`` ('49', '49S', '49XS').
        min_level, max_level (int): Output levels.
        activation (str): 'swish' (TF's 49XS recipe), 'hard_swish' (49S, 49) or 'relu'.
        input_size (int | tuple): Static (H, W) of the Keras input; a multiple of
            2^max_level gives one depthwise stride-2 conv per level of down-sampling, as ours.

    Returns:
        The Keras model.
    """
    import tf_keras

    from official.vision.modeling.backbones import spinenet_mobile as tf_mobile

    scaling = tf_mobile.SCALING_MAP[check_arch(arch, tf_mobile.SCALING_MAP, 'mobile')]
    hw = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    tf_keras.backend.clear_session()
    return tf_mobile.SpineNetMobile(
        input_specs=tf_keras.layers.InputSpec(shape=[None, hw[0], hw[1], 3]),
        min_level=min_level, max_level=max_level, activation=activation, **scaling)


def _creation_index(variable):
    """Creation rank of a TF variable: eager variables carry a global uid in their id."""
    uid = getattr(variable, '_unique_id', '')
    tail = str(uid).rsplit('_', 1)[-1]
    return int(tail) if tail.isdigit() else None


def tf_variables(model, fusion=None):
    """Every variable of ``model`` (and the fusion scalars) by TF name, in creation order."""
    variables = list(model.variables)
    ranks = [_creation_index(v) for v in variables]
    if all(r is not None for r in ranks):
        variables = [v for _, v in sorted(zip(ranks, variables), key=lambda t: t[0])]
    out = OrderedDict()
    for v in variables:
        name = v.name[:-2] if v.name.endswith(':0') else v.name
        if name in out:
            raise RuntimeError(f'duplicate TF variable name {name}')
        out[name] = v.numpy()
    for name, value in (fusion or {}).items():
        out[name] = np.asarray(value, dtype=np.float32)
    return out


def resolve_checkpoint(path):
    """A checkpoint prefix from a prefix or a directory (its latest, or its only, checkpoint)."""
    import tensorflow as tf

    if not osp.isdir(path):
        if not osp.exists(path + '.index'):
            raise CheckpointMismatch(f'no TF checkpoint at {path} ({path}.index is missing)')
        return path
    latest = tf.train.latest_checkpoint(path)
    if latest:
        return latest
    prefixes = sorted(f[:-len('.index')] for f in os.listdir(path) if f.endswith('.index'))
    if len(prefixes) != 1:
        raise CheckpointMismatch(f'{path}: expected one TF checkpoint (*.index) or a '
                                 f"'checkpoint' file, found {prefixes or 'none'}")
    return osp.join(path, prefixes[0])


_STEM_KERNEL_SUFFIX = 'layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE'


def find_backbone_prefix(reader, stem_shape=(7, 7, 3, STEM_CHANNELS)):
    """Object path of the SpineNet inside an object-based checkpoint (e.g. 'backbone/'),
    found by its stem kernel (``stem_shape``, HWIO; SpineNet-Mobile's is 3x3x3xC)."""
    shapes = reader.get_variable_to_shape_map()
    found = sorted(k[:-len(_STEM_KERNEL_SUFFIX)] for k, s in shapes.items()
                   if k.endswith(_STEM_KERNEL_SUFFIX) and list(s) == list(stem_shape))
    if not found:
        shape = 'x'.join(str(d) for d in stem_shape)
        stems = sorted({'x'.join(str(d) for d in s) for k, s in shapes.items()
                        if k.endswith(_STEM_KERNEL_SUFFIX) and len(s) == 4 and s[2] == 3})
        hint = ''
        if stems and stem_shape[0] == 7 and any(s.startswith('3x3x3x') for s in stems):
            hint = ' (a 3x3 stem: a SpineNet-Mobile checkpoint? add --family mobile)'
        elif stems and stem_shape[0] == 3 and any(s.startswith('7x7x3x') for s in stems):
            hint = ' (a 7x7 stem: a SpineNet checkpoint? use --family spinenet)'
        raise CheckpointMismatch(f'no SpineNet found in the checkpoint: no {shape} stem kernel '
                                 f'at */{_STEM_KERNEL_SUFFIX}; its stem kernels are '
                                 f"{', '.join(stems) or 'none'}{hint}")
    return min(found, key=len)  # 'backbone/' rather than 'model/_backbone/'


def tf_read_checkpoint(path, model, min_level=3):
    """Restore ``model`` (a TF SpineNet or SpineNetMobile) from a Model Garden checkpoint;
    return the backbone's object path in it."""
    import tensorflow as tf

    path = resolve_checkpoint(path)
    reader = tf.train.load_checkpoint(path)
    stem = next(v for v in model.variables if v.name.split('/')[0] == 'conv2d')
    prefix = find_backbone_prefix(reader, tuple(stem.shape))
    parts = [p for p in prefix.split('/') if p]
    node = model
    for part in reversed(parts[1:]):
        holder = tf.Module()
        setattr(holder, part, node)
        node = holder
    shapes = reader.get_variable_to_shape_map()
    n_ckpt = sum(1 for k in shapes if _is_model_variable(k, prefix))
    if n_ckpt != len(model.variables):
        raise CheckpointMismatch(_mismatch(reader, prefix, model, n_ckpt, min_level))
    try:
        status = tf.train.Checkpoint(**{parts[0]: node}).read(path).expect_partial()
        status.assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as e:
        raise CheckpointMismatch(_mismatch(reader, prefix, model, n_ckpt, min_level, e)) \
            from None
    return prefix


def _is_model_variable(key, prefix):
    """A model variable under ``prefix`` (not an optimizer slot such as momentum)."""
    return (key.startswith(prefix) and key.endswith('VARIABLE_VALUE')
            and '.OPTIMIZER_SLOT' not in key)


def describe_backbone(reader, prefix):
    """What a checkpoint's backbone looks like: its stem kernel and how many conv kernels and
    variables it holds (enough to tell SpineNet-49S from -49, or a P2 model from P3)."""
    shapes = reader.get_variable_to_shape_map()
    mine = {k[len(prefix):]: s for k, s in shapes.items() if _is_model_variable(k, prefix)}
    stem = mine.get(_STEM_KERNEL_SUFFIX)
    kernels = sum(1 for k, s in mine.items() if len(s) == 4 and 'kernel' in k)
    return (f"stem kernel {'x'.join(map(str, stem)) if stem else 'none'}, {kernels} conv "
            f'kernels, {len(mine)} variables')


def _mismatch(reader, prefix, model, n_ckpt, min_level=3, error=None):
    """One line: which flag is probably wrong, and what the checkpoint holds."""
    n_model = len(model.variables)
    stem_model = next(v for v in model.variables if v.name.split('/')[0] == 'conv2d').shape
    hint = '--arch'
    if n_ckpt > n_model and min_level > 2:
        hint = '--min-level (a P2 checkpoint needs --min-level 2) or --arch'
    elif n_ckpt < n_model and min_level == 2:
        hint = '--min-level (a P3-P7 checkpoint needs --min-level 3) or --arch'
    if error is not None:
        text = str(error)
        m = re.search(r'shape \(([\d, ]+)\).*?shape \(([\d, ]+)\)', text.replace('\n', ' '))
        detail = f'; first mismatch: checkpoint ({m.group(1)}) vs model ({m.group(2)})' if m \
            else ''
    else:
        detail = ''
    return (f'the checkpoint does not fit the TF model built from the flags (probably a wrong '
            f'{hint}): the checkpoint has {n_ckpt} backbone variables under {prefix!r} '
            f'({describe_backbone(reader, prefix)}), the model {n_model} (stem kernel '
            f"{'x'.join(str(d) for d in stem_model)}){detail}")


# TF Model Garden RetinaNetHead (official/vision/modeling/heads/dense_prediction_heads.py):
# object-graph attributes -> the Keras layer names it gives them. A head's variables are
# written to the .npz as 'head/<layer name>/<variable>' (HEAD_PREFIX), e.g.
# 'head/classnet-conv_0/kernel', 'head/boxnet-conv-norm_5_3/moving_mean', 'head/scores/bias'.
HEAD_PREFIX = 'head/'
_VALUE = '/.ATTRIBUTES/VARIABLE_VALUE'
_RETINA_TOWERS = (('classnet', '_cls_convs', '_cls_norms', '_classifier', 'scores'),
                  ('boxnet', '_box_convs', '_box_norms', '_box_regressor', 'boxes'))
_TF_BN_VARS = ('gamma', 'beta', 'moving_mean', 'moving_variance')


def find_retinanet_head_prefix(reader):
    """Object path of a TF RetinaNetHead in a checkpoint ('head/' or 'model/_head/'), or None.

    A RetinaNetHead is recognised by its ``_cls_convs``/``_classifier``/``_box_regressor``
    attributes (TF's RPNHead has ``_convs`` instead of ``_cls_convs``).
    """
    shapes = reader.get_variable_to_shape_map()
    found = []
    for kernel in ('kernel', 'pointwise_kernel'):  # plain / separable convs
        suffix = f'_classifier/{kernel}{_VALUE}'
        found += [k[:-len(suffix)] for k in shapes if k.endswith(suffix)
                  and k[:-len(suffix)] + f'_box_regressor/{kernel}{_VALUE}' in shapes
                  and k[:-len(suffix)] + f'_cls_convs/0/{kernel}{_VALUE}' in shapes]
    return min(found, key=len) if found else None


def tf_read_retinanet_head(reader, prefix, min_level=3):
    """The variables of a TF RetinaNetHead in a checkpoint, named as in the .npz.

    Only the layouts the SpineNet RetinaNets use are read: tower convs shared across levels
    (``share_level_convs=True``), plain or separable convs (``use_separable_conv``, the
    SpineNet-Mobile recipe: ``depthwise_kernel``/``pointwise_kernel``/``bias``), no
    attribute heads; anything else is refused with the reason.
    """
    shapes = reader.get_variable_to_shape_map()

    def has(path):
        return prefix + path + _VALUE in shapes

    def get(path):
        return reader.get_tensor(prefix + path + _VALUE)

    conv_vars = (('depthwise_kernel', 'pointwise_kernel', 'bias')
                 if has('_cls_convs/0/depthwise_kernel') else ('kernel', 'bias'))
    if has('_cls_convs/0/0/kernel') or has('_cls_convs/0/0/depthwise_kernel'):
        raise CheckpointMismatch('the TF RetinaNetHead has per-level convs (share_level_convs=False); '
                         'RetinaSepBNActHead shares its tower convs across levels')
    if any('_att_' in k for k in shapes if k.startswith(prefix)):
        raise CheckpointMismatch('the TF RetinaNetHead has attribute heads; only the class and box '
                         'predictions are converted')
    arrays = OrderedDict()
    for net, convs, norms, predictor, pred_name in _RETINA_TOWERS:
        i = 0
        while has(f'{convs}/{i}/{conv_vars[0]}'):
            for var in conv_vars:
                arrays[f'{HEAD_PREFIX}{net}-conv_{i}/{var}'] = get(f'{convs}/{i}/{var}')
            i += 1
        j = 0
        while has(f'{norms}/{j}/0/gamma'):
            for k in range(i):
                for var in _TF_BN_VARS:
                    arrays[f'{HEAD_PREFIX}{net}-conv-norm_{min_level + j}_{k}/{var}'] = get(
                        f'{norms}/{j}/{k}/{var}')
            j += 1
        for var in conv_vars:
            arrays[f'{HEAD_PREFIX}{pred_name}/{var}'] = get(f'{predictor}/{var}')
    return arrays


def tf_retinanet_head_arrays(head):
    """The variables of a built TF RetinaNetHead object, named as in the .npz (the parity
    test's export; :func:`tf_read_retinanet_head` gives the same names from a checkpoint)."""
    arrays = OrderedDict()
    for _, convs, norms, predictor, _ in _RETINA_TOWERS:
        layers = list(getattr(head, convs))
        layers += [n for level_norms in getattr(head, norms) for n in level_norms]
        layers.append(getattr(head, predictor))
        for layer in layers:
            for v in layer.weights:
                short = v.name.split('/')[-1].split(':')[0]
                arrays[f'{HEAD_PREFIX}{layer.name}/{short}'] = v.numpy()
    return arrays


def save_npz(path, arrays, meta, extra=None):
    payload = OrderedDict(arrays)
    payload['__order__'] = np.array(list(arrays), dtype=object).astype(str)
    payload[META_KEY] = np.array(json.dumps(meta))
    payload.update(extra or {})
    np.savez(path, **payload)


def run_tf_stage(args):
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import tensorflow as tf

    if args.list:
        reader = tf.train.load_checkpoint(resolve_checkpoint(args.src))
        for k, s in sorted(reader.get_variable_to_shape_map().items()):
            print(k, s)
        return
    src = resolve_checkpoint(args.src)
    if args.family == 'mobile':
        model, fusion = tf_build_spinenet_mobile(args.arch, args.min_level, args.max_level), {}
    else:
        model, fusion = tf_build_spinenet(args.arch, args.min_level, args.max_level,
                                          legacy=args.legacy,
                                          weighted_fusion=args.weighted_fusion)
    prefix = tf_read_checkpoint(src, model, args.min_level)
    arrays = tf_variables(model, fusion)
    meta = dict(arch=args.arch, family=args.family, min_level=args.min_level,
                max_level=args.max_level, legacy=args.legacy,
                weighted_fusion=args.weighted_fusion,
                source=osp.abspath(src), checkpoint_prefix=prefix,
                tensorflow=tf.__version__)
    if not args.no_head:
        reader = tf.train.load_checkpoint(src)
        head_prefix = find_retinanet_head_prefix(reader)
        if head_prefix is not None:
            arrays.update(tf_read_retinanet_head(reader, head_prefix, args.min_level))
            meta.update(head='retinanet', head_prefix=head_prefix)
    save_npz(args.dst, arrays, meta)
    parts = prefix + (', ' + meta['head_prefix'] if 'head' in meta else '')
    print(f'{len(arrays)} TF variables ({parts}) -> {args.dst}')


def parse_args(argv=None):
    """Command line of the TF stage (see the module docstring)."""
    parser = argparse.ArgumentParser(description='TF stage of the TF Model Garden SpineNet '
                                     'converter: checkpoint -> .npz of TF variables')
    parser.add_argument('src', help='TF checkpoint (prefix or directory)')
    parser.add_argument('dst', nargs='?', help='.npz to write (not needed with --list)')
    parser.add_argument('--arch', default='49')
    parser.add_argument('--family', default='spinenet', choices=FAMILIES)
    parser.add_argument('--min-level', type=int, default=3)
    parser.add_argument('--max-level', type=int, default=7)
    parser.add_argument('--legacy', action='store_true')
    parser.add_argument('--weighted-fusion', action='store_true')
    parser.add_argument('--no-head', action='store_true')
    parser.add_argument('--list', action='store_true',
                        help='print the checkpoint keys and shapes, write nothing')
    args = parser.parse_args(argv)
    if not args.list and not args.dst:
        parser.error('DST (.npz) is required unless --list')
    return args


def main(argv=None):
    """Run the TF stage; a checkpoint that does not fit is one line on stderr, exit 2."""
    try:
        run_tf_stage(parse_args(argv))
    except CheckpointMismatch as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
