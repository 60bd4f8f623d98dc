"""Convert TF Model Garden SpineNet weights into a state dict for ``mmdet_spine``'s SpineNet.

The conversion has two stages, because TensorFlow and PyTorch live in separate environments
(TensorFlow never enters ``mmdet_spine``'s import path):

1. **TF stage** (run with a TensorFlow interpreter, :mod:`.tf_model_garden_reader`): read a TF
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
   running_var) and ``torch.save`` ``{'state_dict': ..., 'meta': ...}`` of tensors (loads with
   ``weights_only=True``).
   Every key and shape is checked against a freshly built SpineNet of the same arch.

``tools/model_converters/spinenet_tf2mmdet.py`` is the command-line wrapper; the stage is
picked from the file names: ``SRC -> *.npz`` is the TF stage, ``*.npz -> *.pth`` the torch
stage, ``checkpoint -> *.pth`` runs both. The TF stage is
:mod:`mmdet_spine.converters.tf_model_garden_reader`, run in a subprocess of the TensorFlow
interpreter (``--tf-python`` / ``tf_python=``; the model zoo also reads
``$MMDET_SPINE_TF_PYTHON``); it imports only the standard library, numpy and TensorFlow.

The layout of TF's layers is not re-derived here: the parents, the merged unconsumed blocks,
the block widths and the arch check come from :class:`~mmdet_spine.models.backbones.SpineNet`'s
own tables and planner (:func:`~mmdet_spine.models.backbones.spinenet.
plan_scale_permuted_network`), built on the ``meta`` device (no memory, no initialisation).

Two commands (``$TF_PY``: a Python with TensorFlow, see the README's install section)::

    python tools/model_converters/spinenet_tf2mmdet.py retinanet-spinenet49/ckpt-231000 \\
        spinenet49_tf.npz --arch 49 --tf-python $TF_PY
    python tools/model_converters/spinenet_tf2mmdet.py spinenet49_tf.npz spinenet49_tf.pth \\
        --arch 49

or one::

    python tools/model_converters/spinenet_tf2mmdet.py retinanet-spinenet49/ckpt-231000 \\
        spinenet49_tf.pth --arch 49 --tf-python $TF_PY

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
import json
import os
import os.path as osp
import subprocess
import tempfile
from collections import OrderedDict
from typing import Optional

import numpy as np
import torch

from ..errors import ConverterError
from .coco_classes import COCO80_CATEGORY_IDS

__all__ = ['convert_tf_checkpoint', 'convert_npz_arrays', 'convert_arrays',
           'convert_mobile_arrays', 'convert_retinanet_head', 'tf_layout', 'tf_mobile_layout',
           'fusion_inputs', 'model_kwargs', 'load_npz', 'reader_path', 'run_reader',
           'anchor_permutation', 'class_indices', 'retinanet_head_spec', 'COCO80_IDS',
           'CLASS_CHOICES', 'FAMILIES', 'LEGACY_NUM_SPECS', 'HEAD_PREFIX', 'ENV_TF_PYTHON',
           'resolve_tf_python', 'tf_python_help']

LEGACY_NUM_SPECS = 15  # official/legacy/detection has no 16th (level-2 output) block spec
STEM_CHANNELS = 64
META_KEY = '__meta__'
#: Prefix of a RetinaNet head's variables in the TF stage's ``.npz``.
HEAD_PREFIX = 'head/'
#: Environment variable naming a Python with TensorFlow + tf-models-official.
ENV_TF_PYTHON = 'MMDET_SPINE_TF_PYTHON'
#: Backbone families: 'spinenet' (``SpineNet``, TF ``spinenet.py``) and 'mobile'
#: (``SpineNetMobile``, TF ``spinenet_mobile.py``).
FAMILIES = ('spinenet', 'mobile')


def check_family(family):
    """``family`` if it is one of :data:`FAMILIES`."""
    if family not in FAMILIES:
        raise ConverterError(f'family={family!r}; valid choices: {", ".join(FAMILIES)}')
    return family


def reader_path() -> str:
    """Path of the TF stage (:mod:`.tf_model_garden_reader`), to run with a TF interpreter."""
    return osp.join(osp.dirname(osp.abspath(__file__)), 'tf_model_garden_reader.py')


def _build_on_meta(cls, **kwargs):
    """Build an mmdet-spine backbone on the meta device: its tables, plan and arch check,
    with no memory and no initialisation."""
    with torch.device('meta'):
        return cls(**kwargs)


def spinenet_structure(arch, min_level=3, max_level=7, legacy=False):
    """The ``SpineNet`` (on the meta device) whose plan the TF layout follows.

    ``legacy`` uses the first :data:`LEGACY_NUM_SPECS` block specs (``official/legacy``).
    Raises ``ConfigError`` (from SpineNet) naming the valid archs/levels.
    """
    from ..models.backbones.spinenet import SPINENET_BLOCK_SPECS, SpineNet
    specs = SPINENET_BLOCK_SPECS[:LEGACY_NUM_SPECS] if legacy else None
    return _build_on_meta(SpineNet, arch=str(arch), min_level=min_level, max_level=max_level,
                          block_specs=specs)


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


def tf_layout(arch, min_level=3, max_level=7, legacy=False):
    """Replay TF SpineNet's layer creation on our SpineNet's plan.

    Returns a list of ``(part, conv_name, bn_name, kernel_shape_hwio)``; ``part`` is a
    dotted key describing the role:

    - ``stem``: the 7x7 conv;
    - ``stem_blocks.{k}.{r}.{shortcut|conv1|conv2|conv3}``: stem block k, repeat r;
    - ``blocks.{i}.resample.{p}.{reduce|down|expand}``: block spec i (0-based), parent p:
      the 1x1 to alpha*C, the stride-2 3x3 (when the parent is finer), the 1x1 to the target
      width;
    - ``blocks.{i}.block.{r}.{...}``: the block group of spec i;
    - ``endpoints.{level}``: the endpoint 1x1 conv.

    The levels, widths and parents of every node come from
    :func:`~mmdet_spine.models.backbones.spinenet.plan_scale_permuted_network` (via
    :func:`spinenet_structure`). Layers TF creates but leaves out of the model (the level-2
    output block when ``min_level > 2``, pruned in our plan) are listed too: they advance
    Keras' name counters, and are simply absent from a checkpoint.
    """
    net = spinenet_structure(arch, min_level, max_level, legacy)
    plan, settings = net.plan, net.settings
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

    def block_fn_of(node):
        return (net.block_specs[node - plan.num_init].block_fn if node >= plan.num_init
                else 'bottleneck')

    conv_bn('stem', (7, 7, 3, STEM_CHANNELS))
    channels = STEM_CHANNELS
    for k in range(plan.num_init):
        block_group(f'stem_blocks.{k}', 'bottleneck', channels, net._filters(2))
        channels = plan.channels[k]
    for i, spec in enumerate(net.block_specs):
        out_channels = plan.channels[plan.num_init + i]
        for p, parent in enumerate(plan.parents[i]):
            p_channels = plan.channels[parent]
            narrow = int(p_channels / (4 if block_fn_of(parent) == 'bottleneck' else 1)
                         * settings['resample_alpha'])
            conv_bn(f'blocks.{i}.resample.{p}.reduce', (1, 1, p_channels, narrow))
            if plan.levels[parent] < spec.level:
                conv_bn(f'blocks.{i}.resample.{p}.down', (3, 3, narrow, narrow))
            conv_bn(f'blocks.{i}.resample.{p}.expand', (1, 1, narrow, out_channels))
        block_group(f'blocks.{i}.block', spec.block_fn, out_channels, net._filters(spec.level))
    for level, node in plan.endpoints.items():
        conv_bn(f'endpoints.{level}',
                (1, 1, plan.channels[node], settings['endpoints_num_filters']))
    return layout


def fusion_inputs(arch, legacy=False):
    """Number of inputs TF fuses in each block spec (0-based): the resampled parents plus,
    for an output block, every earlier unconsumed block of the same level and width (our
    planner's ``parents`` and ``merged``)."""
    plan = spinenet_structure(arch, legacy=legacy).plan
    return {i: len(p) + len(m) for i, (p, m) in enumerate(zip(plan.parents, plan.merged))}


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
        raise ConverterError(f'no mmdet-spine module for TF layout part {part!r}')
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
    layout = tf_layout(arch, min_level, max_level, legacy)
    state = OrderedDict()
    used = set()
    for part, tf_conv, tf_bn, shape in layout:
        kernel = arrays.get(f'{tf_conv}/kernel')
        if kernel is None:
            continue  # built by TF but not part of the model (unused level-2 output)
        if tuple(kernel.shape) != tuple(shape):
            raise ConverterError(f'{tf_conv}/kernel ({part}) has shape {tuple(kernel.shape)}, '
                                 f'expected {tuple(shape)} for SpineNet-{arch}: wrong --arch?')
        conv, bn = ours_conv_bn(part)
        state[f'{conv}.weight'] = torch.from_numpy(
            np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        used.add(f'{tf_conv}/kernel')
        for tf_key, key in _BN:
            name = f'{tf_bn}/{tf_key}'
            if name not in arrays:
                raise ConverterError(f'{name} ({part}) missing from the TF arrays')
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
        raise ConverterError('the TF arrays hold weighted-fusion scalars (block{i}_fusion{j}): '
                             'convert with --legacy --weighted-fusion')
    if weighted_fusion:
        counts = fusion_inputs(arch, legacy)
        built = {int(part.split('.')[1]) for part, conv, _, _ in layout
                 if part.startswith('blocks.') and f'{conv}/kernel' in arrays}
        for i in sorted(built):
            weights = fusion.get(i, {j: 1.0 for j in range(counts[i])})
            if sorted(weights) != list(range(counts[i])):
                raise ConverterError(f'block{i}_fusion*: TF fuses {counts[i]} inputs in block spec '
                                     f'{i}, the arrays have {sorted(weights)}')
            state[ours_fusion(i)] = torch.tensor([weights[j] for j in range(counts[i])],
                                                 dtype=torch.float32)
    left = sorted(k for k in arrays if k not in used and not k.startswith(('__', HEAD_PREFIX)))
    if left:
        raise ConverterError(f'{len(left)} TF variables were not mapped, e.g. {left[:5]}')
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
    from ..models.backbones.spinenet_mobile import SpineNetMobile
    net = _build_on_meta(SpineNetMobile, arch=str(arch), min_level=min_level,
                         max_level=max_level)
    if net.settings['block_repeats'] != 1:
        raise ConverterError(f"block_repeats={net.settings['block_repeats']}: only TF's "
                             'single-block groups are converted')
    plan = net.plan
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
    for i, spec in enumerate(net.block_specs):  # levels clamped to max_level, as TF
        for p, parent in enumerate(plan.parents[i]):
            for d in range(spec.level - plan.levels[parent]):
                conv_bn(f'blocks.{i + 1}.resample.{p}.down.{d}', 'depthwise')
            conv_bn(f'blocks.{i + 1}.resample.{p}.conv_out')
        mbconv(f'blocks.{i + 1}.layers.0')
    for level in plan.endpoints:
        conv_bn(f'endpoints.{level}')
    return layout


def convert_mobile_arrays(arrays, arch, min_level=3, max_level=7):
    """TF SpineNetMobile arrays (name -> ndarray) -> OrderedDict of torch tensors with
    ``mmdet_spine`` SpineNetMobile names (see :func:`tf_mobile_layout`)."""
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
        raise ConverterError(f'{len(left)} TF variables were not mapped to SpineNetMobile-{arch}, '
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
    from ..models.backbones import SpineNet, SpineNetMobile

    cls = SpineNetMobile if check_family(family) == 'mobile' else SpineNet
    check_state_fits(state, _build_on_meta(cls, **model_kwargs).state_dict(),
                     f'converted weights do not fit {cls.__name__}({model_kwargs})')


def check_state_fits(state, expected, what):
    """Raise :class:`ConverterError` (``what`` + the first differences) unless ``state`` has
    exactly ``expected``'s keys and shapes."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        shapes = [(k, tuple(state[k].shape), tuple(expected[k].shape)) for k in wrong[:5]]
        raise ConverterError(f'{what}: missing {missing[:5]}, unexpected {unexpected[:5]}, '
                             f'shape mismatch {shapes}')


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
        raise ConverterError("family='mobile' has no legacy / weighted-fusion variant")
    for field, value in (('arch', arch), ('family', family), ('min_level', min_level),
                         ('max_level', max_level), ('legacy', legacy)):
        if field in meta and meta[field] != value:
            raise ConverterError(f'the TF arrays were written for {field}={meta[field]!r}, '
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


def tf_requirements_path() -> str:
    """The pinned requirements of the TensorFlow interpreter (shipped with the package)."""
    pkg = osp.dirname(osp.dirname(osp.abspath(__file__)))
    shipped = osp.join(pkg, '.mim', 'requirements', 'tf_reference.txt')
    if osp.isfile(shipped):
        return shipped
    return osp.join(osp.dirname(pkg), 'requirements', 'tf_reference.txt')  # source checkout


def tf_python_help() -> str:
    """How to make a TensorFlow interpreter for the TF stage, in one line."""
    req = tf_requirements_path()
    return (f'create one with: python3 -m venv tf-venv && tf-venv/bin/pip install -r {req} && '
            'tf-venv/bin/pip install --no-deps tf-models-official==2.20.0; then pass '
            f'--tf-python tf-venv/bin/python or set {ENV_TF_PYTHON}=tf-venv/bin/python')


def resolve_tf_python(tf_python: Optional[str] = None) -> str:
    """The TensorFlow interpreter: ``tf_python``, else ``$MMDET_SPINE_TF_PYTHON``.

    Raises:
        ConverterError: Neither is given, or it names no file (the message says how to make
            one: :func:`tf_python_help`).
    """
    for candidate, origin in ((tf_python, '--tf-python'),
                              (os.environ.get(ENV_TF_PYTHON), f'${ENV_TF_PYTHON}')):
        if candidate:
            if not osp.isfile(candidate):
                raise ConverterError(f'{origin}={candidate}: no such interpreter; '
                                     + tf_python_help())
            return candidate
    raise ConverterError('reading a TensorFlow checkpoint needs a Python with TensorFlow and '
                         'TF Model Garden; ' + tf_python_help())


def run_reader(src: str, dst_npz: str, tf_python: Optional[str] = None, arch='49',
               family='spinenet', min_level=3, max_level=7, legacy=False,
               weighted_fusion=False, with_head=True) -> None:
    """Run the TF stage (:mod:`.tf_model_garden_reader`) in the TensorFlow interpreter.

    Raises:
        ConverterError: The interpreter is missing, or the checkpoint does not fit the flags
            (the reader's one-line reason).
    """
    python = resolve_tf_python(tf_python)
    cmd = [python, '-P', reader_path(), str(src), dst_npz, '--arch', str(arch),
           '--family', family, '--min-level', str(min_level), '--max-level', str(max_level)]
    cmd += ['--legacy'] * legacy + ['--weighted-fusion'] * weighted_fusion
    cmd += ['--no-head'] * (not with_head)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get('TF_CPP_MIN_LOG_LEVEL', '2'))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        reason = lines[-1] if lines else f'exit code {proc.returncode}'
        if reason.startswith('error: '):
            reason = reason[len('error: '):]
        raise ConverterError(f'{src}: {reason}')


def convert_tf_checkpoint(src, out=None, arch='49', with_head=True, min_level=3, max_level=7,
                          legacy=False, weighted_fusion=False, prefix=None, check=True,
                          tf_python=None, head_options=None, family='spinenet', meta=None):
    """Convert a TF Model Garden SpineNet / RetinaNet-SpineNet checkpoint (or an ``.npz`` of
    its variables) into an ``mmdet_spine`` state dict.

    A checkpoint is read by the TF stage in a subprocess of the TensorFlow interpreter
    (:func:`run_reader`; TensorFlow never enters this interpreter); an ``.npz`` (the TF stage's
    output, or the parity tests' export) is converted directly.

    Args:
        src (str): TF checkpoint prefix, directory holding one, or ``.npz``.
        out (str, optional): Write ``{'state_dict': ..., 'meta': ...}`` here (``torch.save``).
        arch (str): SpineNet arch ('49S', '49', '96', '143', '190'; '143L' in TF only), or
            with ``family='mobile'`` a SpineNet-Mobile arch ('49XS', '49S', '49').
        with_head (bool): Also convert the RetinaNet head when the checkpoint has one; the
            result is then a RetinaNet detector's state dict ('backbone.*', 'bbox_head.*').
        min_level, max_level (int): Output levels of the TF model.
        legacy, weighted_fusion (bool): ``official/legacy/detection`` SpineNet (and its
            weighted fusion).
        prefix (str, optional): Backbone key prefix (see :func:`convert_npz_arrays`).
        check (bool): Compare keys and shapes with freshly built modules.
        tf_python (str, optional): Interpreter with TensorFlow and tf-models-official
            (default ``$MMDET_SPINE_TF_PYTHON``; see :func:`resolve_tf_python`).
        head_options (dict, optional): See :func:`convert_retinanet_head`.
        family (str): 'spinenet' (default) or 'mobile': TF ``SpineNetMobile`` (and its
            separable-conv RetinaNet head) -> ``SpineNetMobile`` / ``RetinaSepBNActHead(
            separable=True)``.
        meta (dict, optional): Extra ``meta`` entries of the written file.

    Returns:
        OrderedDict: The state dict (torch tensors).
    """
    check_family(family)
    if str(src).endswith('.npz'):
        arrays, npz_meta = load_npz(src)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            npz = osp.join(tmp, 'tf_arrays.npz')
            run_reader(src, npz, tf_python, arch, family, min_level, max_level, legacy,
                       weighted_fusion, with_head)
            arrays, npz_meta = load_npz(npz)
    state = convert_npz_arrays(arrays, npz_meta, str(arch), min_level, max_level, legacy,
                               weighted_fusion, with_head, prefix, check, head_options, family)
    if out:
        info = {'converter': 'spinenet_tf2mmdet', 'converted_from': str(src), 'arch': str(arch),
                'family': family, **(meta or {})}
        torch.save({'state_dict': state, 'meta': info}, out)
    return state


def model_kwargs(arch, min_level=3, max_level=7, weighted_fusion=False, activation='relu',
                 family='spinenet'):
    """Keyword arguments of a ``mmdet_spine`` SpineNet (``family='mobile'``: SpineNetMobile)
    that computes what TF's does: TF 'SAME' padding, BN eps 1e-3 (TF's; momentum 0.99 is
    PyTorch's 0.01), TF's activation ('relu', 'swish'; 'hard_swish' too for mobile)."""
    acts = {'relu': dict(type='ReLU'), 'swish': dict(type='SiLU')}  # one-kernel swish
    if check_family(family) == 'mobile':
        acts['hard_swish'] = dict(type='HSwish')
    if activation not in acts:
        raise ConverterError(f"activation={activation!r}; valid choices: {', '.join(acts)}")
    if family == 'mobile':
        return dict(arch=arch, min_level=min_level, max_level=max_level,
                    padding_mode='tf_same', act_cfg=acts[activation],
                    norm_cfg=dict(type='BN', momentum=0.01, eps=1e-3, requires_grad=True))
    return dict(arch=arch, min_level=min_level, max_level=max_level, padding_mode='tf_same',
                norm_cfg=dict(type='BN', momentum=0.01, eps=1e-3, requires_grad=True),
                act_cfg=acts[activation], fusion='weighted' if weighted_fusion else 'sum')


# The 80 COCO category ids in mmdet's CocoDataset class order (its labels 0..79). TF Model
# Garden's COCO models predict 91 classes indexed by the original category id (0 = background,
# never a detection: TF's detection generator drops column 0).
COCO80_IDS = COCO80_CATEGORY_IDS
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
        raise ConverterError(f'{HEAD_PREFIX}boxes/{kernel} has {boxes.shape[-1]} outputs, not 4 '
                             'per anchor')
    num_anchors = boxes.shape[-1] // 4
    if num_convs == 0 or num_levels == 0 or scores.shape[-1] % num_anchors:
        raise ConverterError(f'unexpected TF RetinaNetHead layout: {num_convs} tower convs, '
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
                raise ConverterError(f'ratio {ratios[r]} (height/width) has no TF aspect ratio '
                                     f'(width/height) {aspect:g} in {tf_aspect_ratios}')
            perm.append(s * len(tf_aspect_ratios) + match[0])
    if len(ratios) != len(tf_aspect_ratios):
        raise ConverterError(f'ratios={list(ratios)} and TF aspect_ratios={tf_aspect_ratios} '
                             'differ in number')
    return perm


def class_indices(tf_num_classes, classes='auto'):
    """TF class columns kept, in our label order: 'coco80' keeps COCO's 80 category ids
    (mmdet's CocoDataset labels), 'all' keeps every TF column, 'auto' is 'coco80' for TF's
    91-class COCO heads and 'all' otherwise."""
    if classes not in CLASS_CHOICES:
        raise ConverterError(f'classes={classes!r}; valid choices: {", ".join(CLASS_CHOICES)}')
    if classes == 'auto':
        classes = 'coco80' if tf_num_classes == 91 else 'all'
    if classes == 'all':
        return list(range(tf_num_classes))
    if tf_num_classes != 91:
        raise ConverterError(f"classes='coco80' needs TF's 91-class COCO head, this one has "
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
    spec = retinanet_head_spec(arrays, min_level)
    if spec is None:
        raise ConverterError(f'no TF RetinaNetHead in the arrays ({HEAD_PREFIX}scores/kernel)')
    perm = anchor_permutation(num_scales, tf_aspect_ratios, ratios, scale_major)
    if len(perm) != spec['num_anchors']:
        raise ConverterError(f"the TF head predicts {spec['num_anchors']} anchors per location, "
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
    acts = {'relu': dict(type='ReLU'), 'swish': dict(type='SiLU'),
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
    from mmdet.registry import MODELS

    from .. import models  # noqa: F401  (registers RetinaSepBNActHead)
    cfg = dict(head_kwargs)
    cls = MODELS.get(cfg.pop('type'))
    check_state_fits(state, _build_on_meta(cls, **cfg).state_dict(),
                     f'converted head does not fit {head_kwargs["type"]}')


