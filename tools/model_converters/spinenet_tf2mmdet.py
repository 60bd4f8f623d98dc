"""Convert TF Model Garden SpineNet weights into a state dict for ``mmdet_spine``'s SpineNet.

The conversion has two stages, because TensorFlow and PyTorch live in separate environments
(TensorFlow never enters ``mmdet_spine``'s import path):

1. **TF stage** (run with the TensorFlow interpreter, e.g. ``.venv-tf/bin/python``): read a TF
   Model Garden checkpoint (``official/vision`` object-based, e.g. a RetinaNet-SpineNet
   ``ckpt-NNNN`` prefix or the directory holding it), restore it into a freshly built TF
   SpineNet of the same architecture, and write every backbone variable to an ``.npz`` named
   by its TF variable name (``conv2d_12/kernel``, ``bottleneck_block_3/batch_normalization_1/
   moving_mean``, ...). Restoring into a rebuilt model (rather than parsing the checkpoint's
   ``layer_with_weights-N`` keys) leaves the bookkeeping of TF's object graph to TF; the
   restore fails loudly if any backbone variable is missing from the checkpoint.
2. **Torch stage** (run with the project's interpreter, e.g. ``.venv/bin/python``): map those
   names onto ``mmdet_spine.models.backbones.SpineNet``'s parameters and buffers (kernels
   HWIO -> OIHW; BN gamma/beta/moving_mean/moving_variance -> weight/bias/running_mean/
   running_var) and ``torch.save`` a plain dict of tensors (loads with ``weights_only=True``).
   Every key and shape is checked against a freshly built SpineNet of the same arch.

The stage is picked from the file names: ``SRC -> *.npz`` is the TF stage, ``*.npz -> *.pth``
the torch stage, ``checkpoint -> *.pth`` runs both (the TF stage in a subprocess of
``--tf-python``, by default ``<repo>/.venv-tf/bin/python``).

Two commands::

    .venv-tf/bin/python tools/model_converters/spinenet_tf2mmdet.py \\
        retinanet-spinenet49/ckpt-231000 spinenet49_tf.npz --arch 49
    .venv/bin/python tools/model_converters/spinenet_tf2mmdet.py \\
        spinenet49_tf.npz spinenet49_tf.pth --arch 49

or one::

    .venv/bin/python tools/model_converters/spinenet_tf2mmdet.py \\
        retinanet-spinenet49/ckpt-231000 spinenet49_tf.pth --arch 49

The result feeds ``SpineNet(arch='49', ..., init_cfg=dict(type='Pretrained',
checkpoint='spinenet49_tf.pth'))``; build the model with the TF-compatible options (TF 'SAME'
padding, BN ``eps=1e-3``) to reproduce TF's numbers. ``--prefix backbone.`` writes keys for a
whole detector's ``load_state_dict(strict=False)`` instead.

The ``.npz`` written by ``tests/reference/tf_spinenet_export.py`` (random weights, used by the
parity test) has the same layout and converts the same way.

**RetinaNet head.** When the checkpoint holds a TF ``RetinaNetHead`` (object path ``head/`` or
``model/_head/``) it is converted too (``--no-head`` to skip) into ``RetinaSepBNActHead``
(``configs/_base_/models/retinanet_spinenet-49.py``), and the result is a RetinaNet state dict
(``backbone.*``, ``bbox_head.*``): tower conv biases folded into the per-level BN means;
anchors reordered from TF's (scale-major, aspect = width / height) to mmdet's
``AnchorGenerator`` order; TF's 91 COCO classes cut to COCO's 80 category ids in mmdet's
CocoDataset order (``--classes all`` keeps them); box deltas (ty, tx, th, tw) reordered to
``DeltaXYWHBBoxCoder``'s (dx, dy, dw, dh) and rescaled for TF's ``box_coder_weights`` /
our ``target_stds``. TF's anchors are size x stride x 2^(i/scales) centred at (k + 0.5) x
stride, which is mmdet's ``AnchorGenerator(octave_base_scale=size, center_offset=0.5)``;
``tests/test_models/test_retinanet_tf_parity.py`` checks raw outputs, anchors and decoded
boxes against TF. (TF clamps only large dh/dw at log(1000/16); mmdet clamps both signs.)

From Python (e.g. the model zoo)::

    convert_tf_checkpoint('retinanet-spinenet49/ckpt-231000', 'out.pth', arch='49')

**SpineNet-Mobile** (``--family mobile``, ``family='mobile'``; archs 49XS, 49S, 49): TF's
``SpineNetMobile`` (``official/vision/modeling/backbones/spinenet_mobile.py``) -> this
project's ``SpineNetMobile``: each ``inverted_bottleneck_block_N`` (1x1 expand conv + BN,
3x3 depthwise conv + BN, squeeze-excitation ``conv2d_2``/``conv2d_3`` with biases, 1x1
projection + BN) -> mmdet's ``InvertedResidual`` (``expand_conv``, ``depthwise_conv``,
``se.conv1``/``se.conv2``, ``linear_conv``); the depthwise stride-2 resampling convs + BN ->
``resample.{p}.down.{d}``, the 1x1 + BN -> ``resample.{p}.conv_out``; depthwise kernels
(kh, kw, C, 1) -> (C, 1, kh, kw) (:func:`tf_mobile_layout`). The mobile RetinaNet recipe's head
is a separable ``RetinaNetHead`` (``use_separable_conv: true``), converted into
``RetinaSepBNActHead(separable=True)`` (see :func:`convert_retinanet_head`);
``tests/test_models/test_spinenet_mobile_tf_parity.py`` checks both against TF::

    convert_tf_checkpoint('retinanet-spinenet-mobile-49xs/ckpt-277200', 'out.pth',
                          arch='49XS', family='mobile')

**Mask R-CNN (not converted; names for reference).** TF's Mask R-CNN heads map onto this
project's SpineNet Mask R-CNN config (``configs/_base_/models/mask-rcnn_spinenet-49.py``):
``RPNHead`` ``rpn-conv_{i}`` (shared) / ``rpn-conv-norm_{level}_{i}`` / ``rpn-scores`` /
``rpn-boxes`` -> ``RPNSepBNHead`` ``rpn_convs.{level-3}.{i}.conv`` / ``.bn`` / ``rpn_cls``
/ ``rpn_reg`` (one objectness logit per anchor in both; same anchor and coordinate
permutations as RetinaNet); ``DetectionHead`` ``detection-conv_{i}`` / ``detection-conv-bn_{i}``
/ ``detection-fc_{j}`` / ``detection-fc-bn_{j}`` /
``detection-scores`` / ``detection-boxes`` -> ``NormActConvFCBBoxHead`` ``shared_convs.{i}
.conv`` / ``.bn`` / ``shared_fcs.{j}`` / ``shared_fc_norms.{j}`` / ``fc_cls`` / ``fc_reg``
(TF's fc input is the (y, x, c)-flattened RoI feature, ours (c, y, x): permute the fc rows;
TF's class 0 is the background, mmdet's the last; TF box weights (10, 10, 5, 5) vs mmdet's
stds (0.1, 0.1, 0.2, 0.2) are the same scaling); ``MaskHead`` ``mask-conv_{i}`` /
``mask-conv-bn_{i}`` / ``mask-upsampling`` / ``mask-deconv-bn`` / ``mask-logits`` ->
``NormActFCNMaskHead`` ``convs.{i}.conv`` / ``.bn`` / ``upsample`` / ``upsample_norm`` /
``conv_logits``. The layer names were read from ``official/vision/modeling/heads/
{dense_prediction_heads,instance_heads}.py`` (tf-models-official 2.20), not tested.

How TF names the layers: after ``tf_keras.backend.clear_session()`` Keras names top-level
layers ``conv2d``, ``conv2d_1``, ..., ``batch_normalization_N``, ``bottleneck_block_N``,
``residual_block_N`` in creation order (one counter per class), and the layers inside a block
restart at ``conv2d``. :func:`tf_layout` replays TF SpineNet's construction order (stem,
then per block spec the two parent resamplings and the block group, then the endpoint
convs) to know which name belongs to which part of the network; shapes are checked on both
sides. The TF2 legacy builder's weighted fusion (``official/legacy``) creates its
``block{i}_fusion{j}`` scalars outside Keras' tracking, so they are never in a checkpoint
(TF2 then uses their initial value 1.0); when an ``.npz`` carries them they are used.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import tempfile
from collections import OrderedDict

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_TF_PYTHON = osp.join(REPO, '.venv-tf', 'bin', 'python')

LEGACY_NUM_SPECS = 15  # official/legacy/detection has no 16th (level-2 output) block spec
STEM_CHANNELS = 64
NUM_STEM_BLOCKS = 2
META_KEY = '__meta__'


def spinenet_tables():
    """(arch settings, block specs, filters per level) of ``mmdet_spine``'s SpineNet: the
    same data as TF Model Garden's ``SCALING_MAP``/``SPINENET_BLOCK_SPECS``/``FILTER_SIZE_MAP``
    (the parity test holds them to it), kept in one place."""
    from mmdet_spine.models.backbones.spinenet import (SPINENET_ARCH_SETTINGS,
                                                       SPINENET_BLOCK_SPECS,
                                                       SPINENET_FILTER_SIZES)
    return SPINENET_ARCH_SETTINGS, SPINENET_BLOCK_SPECS, SPINENET_FILTER_SIZES


def check_arch(arch, valid, family='spinenet'):
    arch = str(arch)
    if arch not in valid:
        name = 'SpineNet-Mobile' if family == 'mobile' else 'SpineNet'
        raise ValueError(f'arch={arch!r} is not a {name} architecture; valid choices: '
                         f"{', '.join(valid)}")
    return arch


#: Backbone families: 'spinenet' (``SpineNet``, TF ``spinenet.py``) and 'mobile'
#: (``SpineNetMobile``, TF ``spinenet_mobile.py``).
FAMILIES = ('spinenet', 'mobile')


def check_family(family):
    if family not in FAMILIES:
        raise ValueError(f'family={family!r}; valid choices: {", ".join(FAMILIES)}')
    return family


def spinenet_mobile_tables():
    """(arch settings, block specs, filters per level) of ``mmdet_spine``'s SpineNetMobile
    (TF's ``spinenet_mobile.py`` ``SCALING_MAP``/``SPINENET_BLOCK_SPECS``/``FILTER_SIZE_MAP``;
    the mobile parity test holds them to it)."""
    from mmdet_spine.models.backbones.spinenet_mobile import (
        SPINENET_MOBILE_ARCH_SETTINGS, SPINENET_MOBILE_BLOCK_SPECS, SPINENET_MOBILE_FILTER_SIZES)
    return (SPINENET_MOBILE_ARCH_SETTINGS, SPINENET_MOBILE_BLOCK_SPECS,
            SPINENET_MOBILE_FILTER_SIZES)


# --------------------------------------------------------------------------------------------
# TF stage (needs TensorFlow + tf-models-official; imported lazily)
# --------------------------------------------------------------------------------------------

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
        raise ValueError('weighted_fusion=True needs legacy=True (official/vision builds '
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
            raise FileNotFoundError(f'no TF checkpoint at {path} ({path}.index is missing)')
        return path
    latest = tf.train.latest_checkpoint(path)
    if latest:
        return latest
    prefixes = sorted(f[:-len('.index')] for f in os.listdir(path) if f.endswith('.index'))
    if len(prefixes) != 1:
        raise FileNotFoundError(f'{path}: expected one TF checkpoint (*.index) or a '
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
        raise ValueError(f'no SpineNet found in the checkpoint: no {shape} stem kernel at '
                         f'*/{_STEM_KERNEL_SUFFIX}; keys look like: '
                         f'{sorted(shapes)[:8]} (use --list to see them all)')
    return min(found, key=len)  # 'backbone/' rather than 'model/_backbone/'


def tf_read_checkpoint(path, model):
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
    status = tf.train.Checkpoint(**{parts[0]: node}).read(path).expect_partial()
    status.assert_existing_objects_matched()
    # Every backbone variable must have been in the checkpoint, with its shape.
    shapes = reader.get_variable_to_shape_map()
    n_ckpt = sum(1 for k in shapes if k.startswith(prefix) and k.endswith('VARIABLE_VALUE'))
    if n_ckpt != len(model.variables):
        raise ValueError(f'checkpoint has {n_ckpt} variables under {prefix!r}, the TF SpineNet '
                         f'has {len(model.variables)}: wrong --arch or levels?')
    return prefix


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
        raise ValueError('the TF RetinaNetHead has per-level convs (share_level_convs=False); '
                         'RetinaSepBNActHead shares its tower convs across levels')
    if any('_att_' in k for k in shapes if k.startswith(prefix)):
        raise ValueError('the TF RetinaNetHead has attribute heads; only the class and box '
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
    prefix = tf_read_checkpoint(src, model)
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


# --------------------------------------------------------------------------------------------
# Layout: TF names <-> parts of the network (pure Python)
# --------------------------------------------------------------------------------------------

class _Namer:
    """Keras' per-class name counters: conv2d, conv2d_1, ...."""

    def __init__(self):
        self.counts = {}

    def __call__(self, base):
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        return base if n == 0 else f'{base}_{n}'


def _block_layers(tf_block, block_fn, in_channels, filters, part):
    """The conv/BN pairs inside one TF Bottleneck/ResidualBlock (creation order).

    Yields (part key, TF conv name, TF BN name, conv kernel shape HWIO).
    """
    inner = _Namer()
    out_channels = filters * 4 if block_fn == 'bottleneck' else filters
    if in_channels != out_channels:  # TF's use_projection (all SpineNet blocks use stride 1)
        yield (f'{part}.shortcut', f'{tf_block}/{inner("conv2d")}',
               f'{tf_block}/{inner("batch_normalization")}', (1, 1, in_channels, out_channels))
    if block_fn == 'bottleneck':
        convs = ((1, in_channels, filters), (3, filters, filters), (1, filters, filters * 4))
    else:
        convs = ((3, in_channels, filters), (3, filters, filters))
    for idx, (k, cin, cout) in enumerate(convs, 1):
        yield (f'{part}.conv{idx}', f'{tf_block}/{inner("conv2d")}',
               f'{tf_block}/{inner("batch_normalization")}', (k, k, cin, cout))


def block_channels(level, block_fn, scale, filter_sizes):
    filters = int(filter_sizes[level] * scale)
    return filters, (filters * 4 if block_fn == 'bottleneck' else filters)


def _arch(arch, legacy):
    archs, specs, filter_sizes = spinenet_tables()
    settings = archs[check_arch(arch, archs)]
    return settings, tuple(specs[:LEGACY_NUM_SPECS] if legacy else specs), filter_sizes


def tf_layout(arch, min_level=3, max_level=7, legacy=False):
    """Replay TF SpineNet's layer creation.

    Returns a list of ``(part, conv_name, bn_name, kernel_shape_hwio)``; ``part`` is a
    dotted key describing the role:

    - ``stem``: the 7x7 conv;
    - ``stem_blocks.{k}.{r}.{shortcut|conv1|conv2|conv3}``: stem block k, repeat r;
    - ``blocks.{i}.resample.{p}.{reduce|down|expand}``: block spec i (0-based), parent p:
      the 1x1 to alpha*C, the stride-2 3x3 (when the parent is finer), the 1x1 to the target
      width;
    - ``blocks.{i}.block.{r}.{...}``: the block group of spec i;
    - ``endpoints.{level}``: the endpoint 1x1 conv.

    Layers TF creates but leaves out of the model (the level-2 output block when
    ``min_level > 2``) are listed too; they are simply absent from a checkpoint.
    """
    settings, specs, filter_sizes = _arch(arch, legacy)
    scale, alpha = settings['filter_size_scale'], settings['resample_alpha']
    repeats = settings['block_repeats']
    top = _Namer()
    layout = []

    def conv_bn(part, shape):
        layout.append((part, top('conv2d'), top('batch_normalization'), shape))

    def block_group(prefix, block_fn, in_channels, filters):
        for r in range(repeats):
            tf_block = top(f'{block_fn}_block')
            layout.extend(_block_layers(tf_block, block_fn, in_channels, filters,
                                        f'{prefix}.{r}'))
            in_channels = filters * 4 if block_fn == 'bottleneck' else filters

    conv_bn('stem', (7, 7, 3, STEM_CHANNELS))
    filters2, out2 = block_channels(2, 'bottleneck', scale, filter_sizes)
    channels = STEM_CHANNELS
    net = []  # (level, block_fn, channels)
    for k in range(NUM_STEM_BLOCKS):
        block_group(f'stem_blocks.{k}', 'bottleneck', channels, filters2)
        channels = out2
        net.append((2, 'bottleneck', out2))
    for i, (level, block_fn, parents, _) in enumerate(specs):
        filters, out_channels = block_channels(level, block_fn, scale, filter_sizes)
        for p, parent in enumerate(parents):
            p_level, p_fn, p_channels = net[parent]
            narrow = int((p_channels / 4 if p_fn == 'bottleneck' else p_channels) * alpha)
            conv_bn(f'blocks.{i}.resample.{p}.reduce', (1, 1, p_channels, narrow))
            if p_level < level:
                conv_bn(f'blocks.{i}.resample.{p}.down', (3, 3, narrow, narrow))
            conv_bn(f'blocks.{i}.resample.{p}.expand', (1, 1, narrow, out_channels))
        block_group(f'blocks.{i}.block', block_fn, out_channels, filters)
        net.append((level, block_fn, out_channels))
    outputs = {s[0]: 2 + i for i, s in enumerate(specs) if s[3]}
    for level in range(min_level, max_level + 1):
        if level not in outputs:
            raise ValueError(f'min_level={min_level}/max_level={max_level}: no SpineNet '
                             f'output at level {level}')
        conv_bn(f'endpoints.{level}',
                (1, 1, net[outputs[level]][2], settings['endpoints_num_filters']))
    return layout


def fusion_inputs(arch, legacy=False):
    """Number of inputs TF fuses in each block spec (0-based): the two resampled parents plus,
    for an output block, every earlier unconsumed block of the same level and width."""
    settings, specs, filter_sizes = _arch(arch, legacy)
    scale = settings['filter_size_scale']
    nodes = [(2, block_channels(2, 'bottleneck', scale, filter_sizes)[1])] * NUM_STEM_BLOCKS
    out_degree = [0] * NUM_STEM_BLOCKS
    counts = {}
    for i, (level, block_fn, parents, is_output) in enumerate(specs):
        channels = block_channels(level, block_fn, scale, filter_sizes)[1]
        for p in parents:
            out_degree[p] += 1
        n = len(parents)
        if is_output:
            for j, node in enumerate(nodes):
                if out_degree[j] == 0 and node == (level, channels):
                    out_degree[j] += 1
                    n += 1
        counts[i] = n
        nodes.append((level, channels))
        out_degree.append(0)
    return counts


# --------------------------------------------------------------------------------------------
# Torch stage
# --------------------------------------------------------------------------------------------

_BN = (('gamma', 'weight'), ('beta', 'bias'), ('moving_mean', 'running_mean'),
       ('moving_variance', 'running_var'))


def ours_conv_bn(part):
    """``mmdet_spine`` SpineNet module names (conv, bn) of a :func:`tf_layout` part.

    Ours: ``stem_conv`` / ``init_blocks.<k>.<r>`` / ``blocks.<i+1>.resample.<p>.{conv_in,
    down_conv,conv_out}`` / ``blocks.<i+1>.layers.<r>`` / ``endpoints.<level>``; blocks hold
    ``conv<n>``/``bn<n>`` and the projection shortcut ``downsample.0``/``downsample.1``.
    """
    keys = part.split('.')
    if keys[0] == 'stem':
        return 'stem_conv.conv', 'stem_conv.bn'
    if keys[0] == 'endpoints':
        return f'endpoints.{keys[1]}.conv', f'endpoints.{keys[1]}.bn'
    if keys[0] == 'blocks' and keys[2] == 'resample':
        module = {'reduce': 'conv_in', 'down': 'down_conv', 'expand': 'conv_out'}[keys[4]]
        base = f'blocks.{int(keys[1]) + 1}.resample.{keys[3]}.{module}'
        return f'{base}.conv', f'{base}.bn'
    if keys[0] == 'stem_blocks':
        base, layer = f'init_blocks.{keys[1]}.{keys[2]}', keys[3]
    elif keys[0] == 'blocks' and keys[2] == 'block':
        base, layer = f'blocks.{int(keys[1]) + 1}.layers.{keys[3]}', keys[4]
    else:
        raise KeyError(part)
    if layer == 'shortcut':
        return f'{base}.downsample.0', f'{base}.downsample.1'
    n = layer[len('conv'):]
    return f'{base}.conv{n}', f'{base}.bn{n}'


def ours_fusion(block_index):
    """``mmdet_spine`` name of the fusion weights of block spec ``block_index`` (0-based, as
    in TF's ``block{i}_fusion{j}``)."""
    return f'blocks.{block_index + 1}.fusion.weight'


def convert_arrays(arrays, arch, min_level=3, max_level=7, legacy=False, weighted_fusion=False):
    """TF arrays (name -> ndarray) -> OrderedDict of torch tensors with our names.

    With ``weighted_fusion`` every built block gets fusion weights: the ``block{i}_fusion{j}``
    arrays when present, else TF2's constant 1.0 (see the module docstring).
    """
    import torch

    layout = tf_layout(arch, min_level, max_level, legacy)
    state = OrderedDict()
    used = set()
    for part, tf_conv, tf_bn, shape in layout:
        kernel = arrays.get(f'{tf_conv}/kernel')
        if kernel is None:
            continue  # built by TF but not part of the model (unused level-2 output)
        if tuple(kernel.shape) != tuple(shape):
            raise ValueError(f'{tf_conv}/kernel ({part}) has shape {tuple(kernel.shape)}, '
                             f'expected {tuple(shape)} for SpineNet-{arch}: wrong --arch?')
        conv, bn = ours_conv_bn(part)
        state[f'{conv}.weight'] = torch.from_numpy(
            np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        used.add(f'{tf_conv}/kernel')
        for tf_key, key in _BN:
            name = f'{tf_bn}/{tf_key}'
            if name not in arrays:
                raise KeyError(f'{name} ({part}) missing from the TF arrays')
            state[f'{bn}.{key}'] = torch.from_numpy(np.ascontiguousarray(arrays[name]))
            used.add(name)
        state[f'{bn}.num_batches_tracked'] = torch.tensor(0, dtype=torch.long)
    fusion = {}
    for name, value in arrays.items():
        if name.startswith('block') and '_fusion' in name:
            i, j = name[len('block'):].split('_fusion')
            fusion.setdefault(int(i), {})[int(j)] = float(value)
            used.add(name)
    if fusion and not weighted_fusion:
        raise ValueError('the TF arrays hold weighted-fusion scalars (block{i}_fusion{j}): '
                         'convert with --legacy --weighted-fusion')
    if weighted_fusion:
        counts = fusion_inputs(arch, legacy)
        built = {int(part.split('.')[1]) for part, conv, _, _ in layout
                 if part.startswith('blocks.') and f'{conv}/kernel' in arrays}
        for i in sorted(built):
            weights = fusion.get(i, {j: 1.0 for j in range(counts[i])})
            if sorted(weights) != list(range(counts[i])):
                raise ValueError(f'block{i}_fusion*: TF fuses {counts[i]} inputs in block spec '
                                 f'{i}, the arrays have {sorted(weights)}')
            state[ours_fusion(i)] = torch.tensor([weights[j] for j in range(counts[i])],
                                                 dtype=torch.float32)
    left = sorted(k for k in arrays if k not in used and not k.startswith(('__', HEAD_PREFIX)))
    if left:
        raise ValueError(f'{len(left)} TF variables were not mapped, e.g. {left[:5]}')
    return state


# --------------------------------------------------------------------------------------------
# SpineNet-Mobile: TF SpineNetMobile names <-> mmdet_spine SpineNetMobile (pure Python)
# --------------------------------------------------------------------------------------------

# Layers inside one TF InvertedBottleneckBlock (Keras names restart per block; the SE's two
# convs are created when the SE is first called, after the projection conv) -> ours (mmdet's
# InvertedResidual) and the kind of weight.
_MBCONV_LAYERS = (
    ('expand_conv.conv', 'conv2d', 'conv'),
    ('expand_conv.bn', 'batch_normalization', 'bn'),
    ('depthwise_conv.conv', 'depthwise_conv2d', 'depthwise'),
    ('depthwise_conv.bn', 'batch_normalization_1', 'bn'),
    ('linear_conv.conv', 'conv2d_1', 'conv'),
    ('linear_conv.bn', 'batch_normalization_2', 'bn'),
    ('se.conv1.conv', 'squeeze_excitation/conv2d_2', 'conv_bias'),
    ('se.conv2.conv', 'squeeze_excitation/conv2d_3', 'conv_bias'),
)


def tf_mobile_layout(arch, min_level=3, max_level=7):
    """Replay TF SpineNetMobile's layer creation.

    Returns a list of ``(ours, tf_name, kind)``: ``ours`` is the module of ``mmdet_spine``'s
    SpineNetMobile (``stem_conv.conv``, ``init_blocks.{k}.0.expand_conv.bn``,
    ``blocks.{i+1}.resample.{p}.down.{d}.conv``, ``blocks.{i+1}.resample.{p}.conv_out.bn``,
    ``blocks.{i+1}.layers.0.se.conv1.conv``, ``endpoints.{level}.conv``, ...), ``tf_name``
    the TF layer (``conv2d_5``, ``inverted_bottleneck_block_3/depthwise_conv2d``, ...) and
    ``kind`` one of 'conv' (HWIO kernel), 'depthwise' ((kh, kw, C, 1) kernel), 'conv_bias'
    (kernel and bias) and 'bn'.

    TF's order: stem conv + BN, the two stem blocks, then per block spec each parent's
    resampling (one 3x3/2 depthwise conv + BN per level down, nearest up, a 1x1 conv + BN)
    and the block, then the endpoint 1x1 conv + BN per level. TF down-samples while the
    parent is wider than the target (ceil widths), one conv per level when the input size is
    a multiple of 2^max_level.
    """
    archs, specs, filter_sizes = spinenet_mobile_tables()
    settings = archs[check_arch(arch, archs, 'mobile')]
    if settings['block_repeats'] != 1:
        raise ValueError(f"block_repeats={settings['block_repeats']}: only TF's single-block "
                         'groups are converted')
    top = _Namer()
    layout = []

    def conv_bn(ours, conv_kind='conv'):
        layout.append((f'{ours}.conv', top('depthwise_conv2d' if conv_kind == 'depthwise'
                                           else 'conv2d'), conv_kind))
        layout.append((f'{ours}.bn', top('batch_normalization'), 'bn'))

    def mbconv(ours):
        tf_block = top('inverted_bottleneck_block')
        layout.extend((f'{ours}.{mine}', f'{tf_block}/{name}', kind)
                      for mine, name, kind in _MBCONV_LAYERS)

    conv_bn('stem_conv')
    mbconv('init_blocks.0.0')
    mbconv('init_blocks.1.0')
    levels = [1, 2]
    for i, spec in enumerate(specs):
        level = min(spec.level, max_level)
        for p, parent in enumerate(spec.input_offsets):
            for d in range(level - levels[parent]):
                conv_bn(f'blocks.{i + 1}.resample.{p}.down.{d}', 'depthwise')
            conv_bn(f'blocks.{i + 1}.resample.{p}.conv_out')
        mbconv(f'blocks.{i + 1}.layers.0')
        levels.append(level)
    for level in range(min_level, max_level + 1):
        conv_bn(f'endpoints.{level}')
    return layout


def convert_mobile_arrays(arrays, arch, min_level=3, max_level=7):
    """TF SpineNetMobile arrays (name -> ndarray) -> OrderedDict of torch tensors with
    ``mmdet_spine`` SpineNetMobile names (see :func:`tf_mobile_layout`)."""
    import torch

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a))

    state = OrderedDict()
    used = set()
    for ours, tf_name, kind in tf_mobile_layout(arch, min_level, max_level):
        if kind == 'bn':
            if f'{tf_name}/gamma' not in arrays:
                continue  # a layer TF built but left out of the model
            for tf_key, key in _BN:
                state[f'{ours}.{key}'] = t(arrays[f'{tf_name}/{tf_key}'])
                used.add(f'{tf_name}/{tf_key}')
            state[f'{ours}.num_batches_tracked'] = torch.tensor(0, dtype=torch.long)
            continue
        name = f'{tf_name}/{"depthwise_kernel" if kind == "depthwise" else "kernel"}'
        if name not in arrays:
            continue
        kernel = arrays[name]
        used.add(name)
        # HWIO -> OIHW; a depthwise (kh, kw, C, 1) -> (C, 1, kh, kw)
        order = (2, 3, 0, 1) if kind == 'depthwise' else (3, 2, 0, 1)
        state[f'{ours}.weight'] = t(kernel.transpose(order))
        if kind == 'conv_bias':
            state[f'{ours}.bias'] = t(arrays[f'{tf_name}/bias'])
            used.add(f'{tf_name}/bias')
    left = sorted(k for k in arrays if k not in used and not k.startswith(('__', HEAD_PREFIX)))
    if left:
        raise ValueError(f'{len(left)} TF variables were not mapped to SpineNetMobile-{arch}, '
                         f'e.g. {left[:5]}: wrong --arch or --family?')
    return state


def load_npz(path):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop(META_KEY))) if META_KEY in arrays else {}
    return arrays, meta


def check_against_model(state, model_kwargs, family='spinenet'):
    """Compare keys and shapes with a freshly built ``mmdet_spine`` SpineNet (or, with
    ``family='mobile'``, SpineNetMobile)."""
    import mmdet_spine  # noqa: F401  (registers the models)
    from mmdet_spine.models.backbones import SpineNet, SpineNetMobile

    cls = SpineNetMobile if check_family(family) == 'mobile' else SpineNet
    expected = cls(**model_kwargs).state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        shapes = [(k, tuple(state[k].shape), tuple(expected[k].shape)) for k in wrong[:5]]
        raise ValueError(f'converted weights do not fit {cls.__name__}({model_kwargs}): missing '
                         f'{missing[:5]}, unexpected {unexpected[:5]}, shape mismatch {shapes}')


def convert_npz_arrays(arrays, meta, arch, min_level=3, max_level=7, legacy=False,
                       weighted_fusion=False, with_head=True, prefix=None, check=True,
                       head_options=None, family='spinenet'):
    """Torch stage on loaded ``.npz`` arrays: backbone (and RetinaNet head) -> state dict.

    Args:
        arrays, meta: From :func:`load_npz`.
        arch, min_level, max_level, legacy, weighted_fusion: As :func:`convert_arrays`.
        with_head (bool): Also convert a TF RetinaNetHead when the arrays have one.
        prefix (str, optional): Prefix of the backbone keys; default '' for a backbone alone
            and 'backbone.' when a head is converted (the head's keys then start with
            'bbox_head.', a RetinaNet detector's state dict).
        check (bool): Compare keys and shapes with freshly built mmdet_spine modules.
        head_options (dict, optional): Keyword arguments of :func:`convert_retinanet_head`
            (classes, num_scales, tf_aspect_ratios, ratios, scale_major, ...).
        family (str): 'spinenet' or 'mobile' (TF SpineNetMobile -> ``SpineNetMobile``).

    Returns:
        OrderedDict: torch tensors.
    """
    check_family(family)
    if family == 'mobile' and (legacy or weighted_fusion):
        raise ValueError("family='mobile' has no legacy / weighted-fusion variant")
    for field, value in (('arch', arch), ('family', family), ('min_level', min_level),
                         ('max_level', max_level), ('legacy', legacy)):
        if field in meta and meta[field] != value:
            raise ValueError(f'the TF arrays were written for {field}={meta[field]!r}, '
                             f'got {field}={value!r}')
    weighted = weighted_fusion or bool(meta.get('weighted_fusion'))
    if family == 'mobile':
        state = convert_mobile_arrays(arrays, arch, min_level, max_level)
        if check:
            check_against_model(state, model_kwargs(arch, min_level, max_level,
                                                    family='mobile'), 'mobile')
    else:
        state = convert_arrays(arrays, arch, min_level, max_level, legacy, weighted)
        if check:
            check_against_model(state, model_kwargs(arch, min_level, max_level, weighted))
    spec = retinanet_head_spec(arrays, min_level) if with_head else None
    if prefix is None:
        prefix = 'backbone.' if spec is not None else ''
    state = OrderedDict((prefix + k, v) for k, v in state.items())
    if spec is not None:
        opts = dict(head_options or {})
        head = convert_retinanet_head(arrays, min_level, **opts)
        if check:
            num_classes = len(class_indices(spec['num_classes'], opts.get('classes', 'auto')))
            kwargs = retinanet_head_kwargs(
                spec, num_classes, ratios=opts.get('ratios', (0.5, 1.0, 2.0)),
                scale_major=opts.get('scale_major', True),
                num_scales=opts.get('num_scales', 3))
            check_head_against_model(head, kwargs)
        state.update(('bbox_head.' + k, v) for k, v in head.items())
    return state


def convert_tf_checkpoint(src, out=None, arch='49', with_head=True, min_level=3, max_level=7,
                          legacy=False, weighted_fusion=False, prefix=None, check=True,
                          tf_python=DEFAULT_TF_PYTHON, head_options=None, family='spinenet'):
    """Convert a TF Model Garden SpineNet / RetinaNet-SpineNet checkpoint (or an ``.npz`` of
    its variables) into an ``mmdet_spine`` state dict.

    A checkpoint is read by the TF stage in a subprocess of ``tf_python`` (TensorFlow never
    enters this interpreter); an ``.npz`` (the TF stage's output, or
    ``tests/reference/tf_*_export.py``'s) is converted directly.

    Args:
        src (str): TF checkpoint prefix, directory holding one, or ``.npz``.
        out (str, optional): Write the state dict here with ``torch.save``.
        arch (str): SpineNet arch ('49S', '49', '96', '143', '190'; '143L' in TF only), or
            with ``family='mobile'`` a SpineNet-Mobile arch ('49XS', '49S', '49').
        with_head (bool): Also convert the RetinaNet head when the checkpoint has one; the
            result is then a RetinaNet detector's state dict ('backbone.*', 'bbox_head.*').
        min_level, max_level (int): Output levels of the TF model.
        legacy, weighted_fusion (bool): ``official/legacy/detection`` SpineNet (and its
            weighted fusion).
        prefix (str, optional): Backbone key prefix (see :func:`convert_npz_arrays`).
        check (bool): Compare keys and shapes with freshly built modules.
        tf_python (str): Interpreter with TensorFlow and tf-models-official.
        head_options (dict, optional): See :func:`convert_retinanet_head`.
        family (str): 'spinenet' (default) or 'mobile': TF ``SpineNetMobile`` (and its
            separable-conv RetinaNet head) -> ``SpineNetMobile`` / ``RetinaSepBNActHead(
            separable=True)``.

    Returns:
        OrderedDict: The state dict (torch tensors).
    """
    import torch

    check_family(family)
    if str(src).endswith('.npz'):
        arrays, meta = load_npz(src)
    else:
        if not osp.exists(tf_python):
            raise FileNotFoundError(
                f'tf_python={tf_python} does not exist; create the TF environment '
                '(requirements/tf_reference.txt) or run the TF stage yourself (see --help)')
        with tempfile.TemporaryDirectory() as tmp:
            npz = osp.join(tmp, 'tf_arrays.npz')
            cmd = [tf_python, osp.abspath(__file__), str(src), npz, '--arch', str(arch),
                   '--family', family, '--min-level', str(min_level),
                   '--max-level', str(max_level)]
            cmd += ['--legacy'] * legacy + ['--weighted-fusion'] * weighted_fusion
            cmd += ['--no-head'] * (not with_head)
            env = dict(os.environ,
                       TF_CPP_MIN_LOG_LEVEL=os.environ.get('TF_CPP_MIN_LOG_LEVEL', '2'))
            subprocess.run(cmd, check=True, env=env)
            arrays, meta = load_npz(npz)
    state = convert_npz_arrays(arrays, meta, str(arch), min_level, max_level, legacy,
                               weighted_fusion, with_head, prefix, check, head_options, family)
    if out:
        torch.save(state, out)
    return state


def run_torch_stage(args, npz_path):
    state = convert_tf_checkpoint(npz_path, args.dst, **_api_kwargs(args))
    print(f'{len(state)} tensors -> {args.dst}')


def _api_kwargs(args):
    head_options = dict(classes=args.classes, num_scales=args.num_scales,
                        tf_aspect_ratios=args.tf_aspect_ratios, ratios=args.ratios,
                        scale_major=not args.tf_anchor_order)
    return dict(arch=args.arch, family=args.family, with_head=not args.no_head,
                min_level=args.min_level,
                max_level=args.max_level, legacy=args.legacy,
                weighted_fusion=args.weighted_fusion, prefix=args.prefix or None,
                check=not args.no_check, tf_python=args.tf_python, head_options=head_options)


def model_kwargs(arch, min_level=3, max_level=7, weighted_fusion=False, activation='relu',
                 family='spinenet'):
    """Keyword arguments of a ``mmdet_spine`` SpineNet (``family='mobile'``: SpineNetMobile)
    that computes what TF's does: TF 'SAME' padding, BN eps 1e-3 (TF's; momentum 0.99 is
    PyTorch's 0.01), TF's activation ('relu', 'swish'; 'hard_swish' too for mobile)."""
    acts = {'relu': dict(type='ReLU'), 'swish': dict(type='Swish')}
    if check_family(family) == 'mobile':
        acts['hard_swish'] = dict(type='HSwish')
    if activation not in acts:
        raise ValueError(f"activation={activation!r}; valid choices: {', '.join(acts)}")
    if family == 'mobile':
        return dict(arch=arch, min_level=min_level, max_level=max_level,
                    padding_mode='tf_same', act_cfg=acts[activation],
                    norm_cfg=dict(type='BN', momentum=0.01, eps=1e-3, requires_grad=True))
    return dict(arch=arch, min_level=min_level, max_level=max_level, padding_mode='tf_same',
                norm_cfg=dict(type='BN', momentum=0.01, eps=1e-3, requires_grad=True),
                act_cfg=acts[activation], fusion='weighted' if weighted_fusion else 'sum')


# --------------------------------------------------------------------------------------------
# RetinaNet head: TF RetinaNetHead -> mmdet_spine RetinaSepBNActHead (pure numpy/torch)
# --------------------------------------------------------------------------------------------

# The 80 COCO category ids in mmdet's CocoDataset class order (its labels 0..79). TF Model
# Garden's COCO models predict 91 classes indexed by the original category id (0 = background,
# never a detection: TF's detection generator drops column 0).
COCO80_IDS = tuple(i for i in range(1, 91)
                   if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))
CLASS_CHOICES = ('auto', 'coco80', 'all')


def retinanet_head_spec(arrays, min_level=3):
    """Shape facts of the TF RetinaNetHead in ``arrays`` (see :data:`HEAD_PREFIX`).

    Returns:
        dict | None: ``num_convs``, ``num_levels``, ``in_channels``, ``feat_channels``,
        ``num_anchors``, ``num_classes`` (TF's, e.g. 91), ``separable`` (TF's
        ``use_separable_conv``) or None without a head.
    """
    separable = f'{HEAD_PREFIX}scores/pointwise_kernel' in arrays
    kernel = 'pointwise_kernel' if separable else 'kernel'
    if f'{HEAD_PREFIX}scores/{kernel}' not in arrays:
        return None
    num_convs = 0
    while f'{HEAD_PREFIX}classnet-conv_{num_convs}/{kernel}' in arrays:
        num_convs += 1
    num_levels = 0
    while f'{HEAD_PREFIX}classnet-conv-norm_{min_level + num_levels}_0/gamma' in arrays:
        num_levels += 1
    scores = arrays[f'{HEAD_PREFIX}scores/{kernel}']
    boxes = arrays[f'{HEAD_PREFIX}boxes/{kernel}']
    if boxes.shape[-1] % 4:
        raise ValueError(f'{HEAD_PREFIX}boxes/{kernel} has {boxes.shape[-1]} outputs, not 4 '
                         'per anchor')
    num_anchors = boxes.shape[-1] // 4
    if num_convs == 0 or num_levels == 0 or scores.shape[-1] % num_anchors:
        raise ValueError(f'unexpected TF RetinaNetHead layout: {num_convs} tower convs, '
                         f'{num_levels} levels from min_level={min_level}, '
                         f'{scores.shape[-1]} class outputs for {num_anchors} anchors')
    first = arrays[f'{HEAD_PREFIX}classnet-conv_0/{kernel}']
    return dict(num_convs=num_convs, num_levels=num_levels, in_channels=int(first.shape[2]),
                feat_channels=int(scores.shape[2]), num_anchors=num_anchors,
                num_classes=scores.shape[-1] // num_anchors, separable=separable)


def anchor_permutation(num_scales=3, tf_aspect_ratios=(0.5, 1.0, 2.0),
                       ratios=(0.5, 1.0, 2.0), scale_major=True):
    """For each anchor of mmdet's ``AnchorGenerator``, the index of the same box in TF.

    TF's ``Anchor`` (official/vision/ops/anchor.py) loops ``for scale: for aspect_ratio``,
    and its aspect ratio is width / height. mmdet's ``AnchorGenerator(ratios=...,
    scales_per_octave=...)`` uses height / width and, with ``scale_major=True`` (its default),
    orders the anchors ratio by ratio with the scales inside; ``scale_major=False`` is TF's
    order. The two sets of boxes must be the same (every ``1 / ratio`` is a TF aspect ratio).

    Returns:
        list[int]: ``perm`` with our anchor ``m`` == TF anchor ``perm[m]``.
    """
    tf_aspect_ratios = [float(a) for a in tf_aspect_ratios]
    perm = []
    for outer in range(num_scales if not scale_major else len(ratios)):
        for inner in range(len(ratios) if not scale_major else num_scales):
            r, s = (inner, outer) if not scale_major else (outer, inner)
            aspect = 1.0 / float(ratios[r])
            match = [a for a, v in enumerate(tf_aspect_ratios) if abs(v - aspect) < 1e-6]
            if not match:
                raise ValueError(f'ratio {ratios[r]} (height/width) has no TF aspect ratio '
                                 f'(width/height) {aspect:g} in {tf_aspect_ratios}')
            perm.append(s * len(tf_aspect_ratios) + match[0])
    if len(ratios) != len(tf_aspect_ratios):
        raise ValueError(f'ratios={list(ratios)} and TF aspect_ratios={tf_aspect_ratios} '
                         'differ in number')
    return perm


def class_indices(tf_num_classes, classes='auto'):
    """TF class columns kept, in our label order: 'coco80' keeps COCO's 80 category ids
    (mmdet's CocoDataset labels), 'all' keeps every TF column, 'auto' is 'coco80' for TF's
    91-class COCO heads and 'all' otherwise."""
    if classes not in CLASS_CHOICES:
        raise ValueError(f'classes={classes!r}; valid choices: {", ".join(CLASS_CHOICES)}')
    if classes == 'auto':
        classes = 'coco80' if tf_num_classes == 91 else 'all'
    if classes == 'all':
        return list(range(tf_num_classes))
    if tf_num_classes != 91:
        raise ValueError(f"classes='coco80' needs TF's 91-class COCO head, this one has "
                         f'{tf_num_classes} classes')
    return list(COCO80_IDS)


def convert_retinanet_head(arrays, min_level=3, classes='auto', num_scales=3,
                           tf_aspect_ratios=(0.5, 1.0, 2.0), ratios=(0.5, 1.0, 2.0),
                           scale_major=True, box_coder_weights=None,
                           target_means=(0., 0., 0., 0.), target_stds=(1., 1., 1., 1.)):
    """TF RetinaNetHead arrays -> state dict of ``RetinaSepBNActHead`` (keys without the
    ``bbox_head.`` prefix).

    - Tower: TF's shared conv has a bias followed by a BN per level; ours has no bias, so the
      bias is folded into each level's BN (``running_mean - bias``), exact in inference.
      The shared conv weight is written under every level's key (mmdet ties them).
    - Classifier: rows reordered per anchor (:func:`anchor_permutation`) and per class
      (:func:`class_indices`); TF and mmdet both lay channels out anchor-major.
    - Box regressor: anchors reordered; TF's (ty, tx, th, tw) become mmdet's
      ``DeltaXYWHBBoxCoder`` (dx, dy, dw, dh); TF decodes ``raw / weights`` (RetinaNet: no
      weights), mmdet ``pred * std + mean``, so weights and biases are rescaled to give
      mmdet's decoder the same deltas.
    - Separable head (TF ``use_separable_conv=True``, the SpineNet-Mobile recipe) ->
      ``RetinaSepBNActHead(separable=True)``: each conv is a depthwise (no bias) + pointwise
      (bias) pair (``conv.depthwise_conv.conv`` / ``conv.pointwise_conv.conv`` in the tower,
      ``retina_cls.depthwise_conv.conv`` / ``retina_cls.pointwise_conv.conv`` for the
      predictors); TF's pointwise bias is kept (not folded), so the parameters are TF's, and
      the predictors' reorderings apply to the pointwise rows (the depthwise kernel acts on
      the tower's channels and is copied as is).

    Args:
        arrays (dict): Name -> ndarray, with the ``head/...`` names of :data:`HEAD_PREFIX`.
        min_level (int): TF's first level (names the per-level norms).
        classes (str): 'auto', 'coco80' or 'all' (see :func:`class_indices`).
        num_scales (int): TF ``anchor.num_scales``.
        tf_aspect_ratios (sequence): TF ``anchor.aspect_ratios`` (width / height).
        ratios (sequence): Our ``anchor_generator.ratios`` (height / width).
        scale_major (bool): Our ``anchor_generator.scale_major``.
        box_coder_weights (sequence, optional): TF's detection generator
            ``box_coder_weights`` (y, x, h, w); None for RetinaNet.
        target_means, target_stds (sequence): Our ``bbox_coder`` (x, y, w, h).

    Returns:
        OrderedDict: torch tensors.
    """
    import torch

    spec = retinanet_head_spec(arrays, min_level)
    if spec is None:
        raise KeyError(f'no TF RetinaNetHead in the arrays ({HEAD_PREFIX}scores/kernel)')
    perm = anchor_permutation(num_scales, tf_aspect_ratios, ratios, scale_major)
    if len(perm) != spec['num_anchors']:
        raise ValueError(f"the TF head predicts {spec['num_anchors']} anchors per location, "
                         f'num_scales={num_scales} x aspect_ratios={list(tf_aspect_ratios)} '
                         f'make {len(perm)}')
    keep = class_indices(spec['num_classes'], classes)

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    def conv_weight(kernel):  # HWIO -> OIHW
        return kernel.transpose(3, 2, 0, 1)

    def depthwise_weight(kernel):  # (kh, kw, C, 1) -> (C, 1, kh, kw)
        return kernel.transpose(2, 3, 0, 1)

    separable = spec['separable']
    state = OrderedDict()
    for net, ours in (('classnet', 'cls_convs'), ('boxnet', 'reg_convs')):
        for level in range(spec['num_levels']):
            for i in range(spec['num_convs']):
                tf_conv = f'{HEAD_PREFIX}{net}-conv_{i}'
                bias = arrays[f'{tf_conv}/bias']
                bn = f'{HEAD_PREFIX}{net}-conv-norm_{min_level + level}_{i}'
                base = f'{ours}.{level}.{i}'
                mean = arrays[f'{bn}/moving_mean']
                if separable:
                    state[f'{base}.conv.depthwise_conv.conv.weight'] = t(
                        depthwise_weight(arrays[f'{tf_conv}/depthwise_kernel']))
                    state[f'{base}.conv.pointwise_conv.conv.weight'] = t(
                        conv_weight(arrays[f'{tf_conv}/pointwise_kernel']))
                    state[f'{base}.conv.pointwise_conv.conv.bias'] = t(bias)
                else:
                    state[f'{base}.conv.weight'] = t(conv_weight(arrays[f'{tf_conv}/kernel']))
                    mean = mean - bias
                state[f'{base}.bn.weight'] = t(arrays[f'{bn}/gamma'])
                state[f'{base}.bn.bias'] = t(arrays[f'{bn}/beta'])
                state[f'{base}.bn.running_mean'] = t(mean)
                state[f'{base}.bn.running_var'] = t(arrays[f'{bn}/moving_variance'])
                state[f'{base}.bn.num_batches_tracked'] = torch.tensor(0, dtype=torch.long)

    def predictor(tf_name, ours, rows, scale=None, shift=None):
        """Output channels ``rows`` of a TF predictor, times ``scale`` minus ``shift``."""
        name = f'{HEAD_PREFIX}{tf_name}'
        kernel = arrays[f'{name}/{"pointwise_kernel" if separable else "kernel"}']
        kernel = kernel[..., rows].astype(np.float64)
        bias = arrays[f'{name}/bias'][rows].astype(np.float64)
        if scale is not None:
            kernel, bias = kernel * scale, bias * scale - shift
        if separable:
            state[f'{ours}.depthwise_conv.conv.weight'] = t(
                depthwise_weight(arrays[f'{name}/depthwise_kernel']))
            ours = f'{ours}.pointwise_conv.conv'
        state[f'{ours}.weight'] = t(conv_weight(kernel))
        state[f'{ours}.bias'] = t(bias)

    # classifier: output channel (anchor, class)
    num_tf_classes = spec['num_classes']
    predictor('scores', 'retina_cls', [a * num_tf_classes + c for a in perm for c in keep])
    # box regressor: output channel (anchor, coordinate); ours x, y, w, h <- TF 1, 0, 3, 2
    tf_coord = (1, 0, 3, 2)
    weights = [1.0] * 4 if box_coder_weights is None else [float(w) for w in box_coder_weights]
    scale = np.array([1.0 / (weights[tf_coord[j]] * float(target_stds[j])) for j in range(4)],
                     dtype=np.float64)
    shift = np.array([float(m) / float(s) for m, s in zip(target_means, target_stds)])
    predictor('boxes', 'retina_reg', [a * 4 + tf_coord[j] for a in perm for j in range(4)],
              np.tile(scale, len(perm)), np.tile(shift, len(perm)))
    return state


def retinanet_head_kwargs(spec, num_classes, ratios=(0.5, 1.0, 2.0), scale_major=True,
                          num_scales=3, anchor_size=3.0, activation='swish'):
    """Keyword arguments of a ``RetinaSepBNActHead`` that computes what TF's head does, with
    TF's anchors (size ``anchor_size`` x stride, centred at stride / 2)."""
    acts = {'relu': dict(type='ReLU'), 'swish': dict(type='Swish'),
            'hard_swish': dict(type='HSwish')}
    return dict(
        type='RetinaSepBNActHead', separable=bool(spec.get('separable', False)),
        num_classes=num_classes, num_ins=spec['num_levels'],
        in_channels=spec['in_channels'], stacked_convs=spec['num_convs'],
        feat_channels=spec['feat_channels'],
        norm_cfg=dict(type='BN', momentum=0.01, eps=1e-3, requires_grad=True),
        act_cfg=acts[activation],
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=anchor_size,
                              scales_per_octave=num_scales, ratios=list(ratios),
                              scale_major=scale_major, center_offset=0.5,
                              strides=[2**(3 + i) for i in range(spec['num_levels'])]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                        target_stds=[1., 1., 1., 1.]))


def check_head_against_model(state, head_kwargs):
    """Compare keys and shapes with a freshly built ``RetinaSepBNActHead``."""
    import mmdet_spine  # noqa: F401  (registers the models)
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet')
    expected = MODELS.build(head_kwargs).state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        shapes = [(k, tuple(state[k].shape), tuple(expected[k].shape)) for k in wrong[:5]]
        raise ValueError(f'converted head does not fit {head_kwargs["type"]}: missing '
                         f'{missing[:5]}, unexpected {unexpected[:5]}, shape mismatch {shapes}')


# --------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert TF Model Garden SpineNet weights to mmdet_spine',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='See the module docstring for the two stages and examples.')
    parser.add_argument('src', help='TF checkpoint (prefix or directory) or .npz')
    parser.add_argument('dst', help='.npz (TF stage only) or .pth (torch state dict)')
    parser.add_argument('--arch', required=True,
                        help="49S, 49, 96, 143, 143L or 190 (--family mobile: 49XS, 49S, 49)")
    parser.add_argument('--family', default='spinenet', choices=FAMILIES,
                        help="'spinenet' (default) or 'mobile' (TF SpineNetMobile, whose "
                        "RetinaNet head has separable convs)")
    parser.add_argument('--min-level', type=int, default=3)
    parser.add_argument('--max-level', type=int, default=7)
    parser.add_argument('--legacy', action='store_true',
                        help='official/legacy/detection SpineNet (15 block specs)')
    parser.add_argument('--weighted-fusion', action='store_true',
                        help='legacy SpineNet built with weighted fusion')
    parser.add_argument('--prefix', default='',
                        help="prepend to every backbone key (default: none for a backbone "
                        "alone, 'backbone.' when a RetinaNet head is converted too)")
    parser.add_argument('--no-head', action='store_true',
                        help='convert the backbone only, even if the checkpoint has a '
                        'RetinaNet head')
    parser.add_argument('--classes', default='auto', choices=CLASS_CHOICES,
                        help="head classes: 'coco80' keeps COCO's 80 category ids of TF's "
                        "91-class head (mmdet's CocoDataset labels), 'all' every TF class; "
                        "'auto' (default): coco80 for a 91-class head, else all")
    parser.add_argument('--num-scales', type=int, default=3, help='TF anchor.num_scales')
    parser.add_argument('--tf-aspect-ratios', type=float, nargs='+', default=[0.5, 1.0, 2.0],
                        help='TF anchor.aspect_ratios (width / height)')
    parser.add_argument('--ratios', type=float, nargs='+', default=[0.5, 1.0, 2.0],
                        help="our anchor_generator.ratios (height / width)")
    parser.add_argument('--tf-anchor-order', action='store_true',
                        help='our anchor_generator has scale_major=False (TF\'s order); '
                        'default: mmdet\'s scale_major=True')
    parser.add_argument('--tf-python', default=DEFAULT_TF_PYTHON,
                        help='interpreter with TensorFlow for the TF stage (default: %(default)s)')
    parser.add_argument('--no-check', action='store_true',
                        help='do not compare with a freshly built mmdet_spine SpineNet')
    parser.add_argument('--list', action='store_true',
                        help='TF stage: print the checkpoint keys and shapes, write nothing')
    args = parser.parse_args(argv)
    if args.weighted_fusion and not args.legacy:
        parser.error('--weighted-fusion needs --legacy')
    if args.family == 'mobile' and args.legacy:
        parser.error('--family mobile has no --legacy variant')
    return args


def main(argv=None):
    args = parse_args(argv)
    src_is_npz = args.src.endswith('.npz')
    if args.list or args.dst.endswith('.npz'):
        if src_is_npz:
            raise SystemExit('the TF stage reads a TF checkpoint, not an .npz')
        run_tf_stage(args)
        return
    if src_is_npz:
        run_torch_stage(args, args.src)
        return
    # checkpoint -> .pth: the TF stage in the TF interpreter, then the torch stage here.
    if not osp.exists(args.tf_python):
        raise SystemExit(f'--tf-python {args.tf_python} does not exist; create the TF '
                         'environment (requirements/tf_reference.txt) or run the TF stage '
                         'yourself (see --help)')
    state = convert_tf_checkpoint(args.src, args.dst, **_api_kwargs(args))
    print(f'{len(state)} tensors -> {args.dst}')

if __name__ == '__main__':
    main()
