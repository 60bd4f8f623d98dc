"""Convert the legacy tensorflow/tpu SpineNet checkpoints into ``mmdet_spine`` state dicts.

tensorflow/tpu's ``models/official/detection`` (the code of the SpineNet paper, Du et al.,
CVPR 2020, https://arxiv.org/abs/1912.05027) published RetinaNet SpineNet-49S/49/96/143/190,
SpineNet-MBConv-49 and Mask R-CNN SpineNet weights as TF1 ``TPUEstimator`` checkpoints:
*name-based*, every variable stored under its graph name. Two stages, as
:mod:`.tf_model_garden` (TensorFlow never enters this interpreter):

1. **TF stage** (:mod:`.tpu_legacy_reader`, run by path in a TensorFlow interpreter): every
   model variable of the checkpoint -> ``.npz`` by name (``Momentum`` slots and
   ``global_step`` skipped).
2. **Torch stage** (here): names -> this project's modules, kernels HWIO -> OIHW, BN
   gamma/beta/moving_mean/moving_variance -> weight/bias/running_mean/running_var; keys and
   shapes checked against freshly built modules (on the meta device); every variable of the
   checkpoint must be used, or the conversion fails naming the first unmapped ones.

**How the names were established.** From the code that wrote them, tensorflow/tpu
``models/official/detection/modeling/architecture/{spinenet,nn_blocks,nn_ops,heads}.py``
(read at commit eda17a4, 2021-04-29; the variable scopes are unchanged since the first
SpineNet commit 773d58e, 2020-03-11, before the checkpoints were published in April-June
2020): ``tf.layers`` layers without a name are called ``conv2d``, ``conv2d_1``, ... and
``batch_normalization``, ``batch_normalization_1``, ... with one counter per enclosing
``tf.variable_scope``; SpineNet opens ``spinenet/``, per block spec ``i`` a
``sub_policy{i}/`` holding the two parent resamplings ``resample_with_alpha_resample_{i}_{p}/``
and the block group ``scale_permuted_block_{i + 2}/``; the stem, the two stem block groups
and the endpoint convs live in ``spinenet/`` itself (in that creation order); the blocks
open no scope of their own (projection shortcut first, then conv1..conv3). So::

    spinenet/conv2d/kernel                                   stem 7x7 conv
    spinenet/conv2d_1/kernel ... conv2d_7                    stem blocks (49: 4 + 3 convs)
    spinenet/sub_policy0/resample_with_alpha_resample_0_1/conv2d_1/kernel   parent 1's 3x3/2
    spinenet/sub_policy0/scale_permuted_block_2/batch_normalization_2/gamma
    spinenet/conv2d_8/kernel ... conv2d_12                   endpoints P3..P7
    retinanet/class_net/class-{i}/{kernel,bias}              shared tower conv i
    retinanet/class_net/class-{i}-{level}/{gamma,...}        its BN at one level
    retinanet/class_net/class-predict/{kernel,bias}          (box_net/box-{i}, box-predict)

:func:`tpu_spinenet_layout` replays that creation order on this project's SpineNet planner
(through :func:`.tf_model_garden.tf_layout`, the same parts TF2 builds, renamed by scope).
TF Model Garden's TF2 port, ``official/legacy/detection`` (the legacy Keras SpineNet), names
the same layers ``conv2d_N`` with one global counter, so the Keras name of a TPU backbone
variable is not a suffix of its checkpoint name in general: ``conv2d/kernel`` ends 46 of
SpineNet-49S's names, and its ``checkpoint_utils.make_restore_checkpoint_fn`` stops with
"more then on matches for conv2d/kernel" on such a checkpoint (measured with
tf-models-official 2.20); its heads keep the TPU's layer names (``class_net/class-0``, ...).
So the names here come from the TPU code, and the tests check this layout against the names
*and shapes* that running the tensorflow/tpu code itself creates (recorded in
``tests/data/tpu_legacy/`` from tensorflow/tpu at 7dc921f, see
``tests/reference/tpu_legacy_record.py``).

**What the TPU model computes** differs from both TF2 SpineNets in three places, so the
converted weights are run with ``padding_mode='tf_tpu'`` (see
:class:`~mmdet_spine.models.layers.CrossScaleResample`): strided convs are padded
symmetrically (its ``conv2d_fixed_padding``), max-pools use TF 'SAME', and a resampling more
than one level down is one 3x3/2 (two levels) or 5x5 stride-2^(d-1) max-pool (d levels), not
a chain of 3x3/2 pools. BN epsilon is 1e-4 (momentum 0.997) in the RetinaNet recipes, 1e-3 in
Mask R-CNN's, 1e-5 in the classifiers'; activation swish, relu for Mask R-CNN (:data:`RECIPES`,
:func:`model_kwargs`).

**RetinaNet head** -> ``RetinaSepBNActHead``, with the math of
:func:`.tf_model_garden.convert_retinanet_head` (tower conv biases folded into the per-level
BN means, anchors reordered from TF's scale-major aspect ratios ``[1.0, 2.0, 0.5]`` (width /
height), TF's 91 classes cut to COCO's 80, box deltas (ty, tx, th, tw) -> (dx, dy, dw, dh)).
A separable head (``use_separable_conv``, the MBConv recipe) keeps its pointwise biases.

**SpineNet-MBConv** (``family='mbconv'``, scope ``spinenet_mbconv/``) -> ``SpineNetMobile``
(:func:`tpu_mbconv_layout`; the SE's two biased convs are named before the projection conv,
in call order). It computes what TF Model Garden's SpineNet-Mobile does except that its SE
is swish / sigmoid (``se_act_cfg``) and it pads symmetrically (``padding_mode='pytorch'``).

**Mask R-CNN** (``rpn_head/``, ``fast_rcnn_head/``, ``mask_head/``) -> ``RPNSepBNHead``,
``NormActConvFCBBoxHead``, ``NormActFCNMaskHead`` (:func:`convert_rpn_head`,
:func:`convert_box_head`, :func:`convert_mask_head`): conv biases folded into the BNs that
follow them; the heads' BNs are unnamed (``batch_normalization``, ``_1``, ... in creation
order: convs, then fcs / the deconv); RPN anchors (``num_scales`` 1 x 3 aspect ratios) and
deltas reordered; the fc's rows from TF's (y, x, c) RoI flattening to ours (c, y, x); TF's
class 0 (background) -> mmdet's last; class-specific box rows reordered, TF's
``regression_weights`` (10, 10, 5, 5) = 1 / mmdet's stds (0.1, 0.1, 0.2, 0.2); the deconv
kernel (kh, kw, out, in) -> (in, out, kh, kw).

**ImageNet classifiers** (``classification_head/dense``) -> the classification models'
``SpineClassifier`` (``PyramidAveragePooling(aggregation='all')`` +
``LinearClassificationHead``), TF's background logit dropped (1001 -> 1000 classes).

**What was verified** (``tests/test_models/test_tpu_legacy_parity.py``, random weights, 128
px): the layouts give exactly the names and shapes the tensorflow/tpu code creates
(SpineNet-49S, -96, MBConv-49 backbones; every head variable of the recorded RetinaNet,
Mask R-CNN and classifier is used), and the converted models reproduce that code's outputs
(run once by ``tests/reference/tpu_legacy_record.py``, recorded in ``tests/data/tpu_legacy/``)
within 1e-4 relative, measured about 1e-6: backbone levels, RetinaNet class / box outputs
(49S and MBConv-49), Mask R-CNN RPN outputs and box / mask head outputs for fixed RoI
features (49S backbone, narrow heads), classifier logits. TF Model Garden's TF2 port
(``official/legacy/detection``) gives the same outputs as our ``padding_mode='tf_same'``
model from a name-based checkpoint written with these names; the TPU code's outputs differ
from it by 5-10 % (relative), so the TPU checkpoints need ``padding_mode='tf_tpu'``. The TPU's
RoI features (``multilevel_crop_and_resize``) are mmdet's ``SingleRoIExtractor`` with
``RoIAlign(sampling_ratio=1, aligned=False)``, ``finest_scale=112`` over P3-P7 (1e-5
relative; the zoo rows' Cfg Options set it). Not verified: the published checkpoints
themselves (not downloadable here), and Mask R-CNN's proposal / detection post-processing
(mmdet's, not the TPU's).

Usage (``tools/model_converters/tpu_legacy2mmdet.py`` is the CLI)::

    convert_tpu_checkpoint('spinenet-49-best/model.ckpt-231500', 'out.pth', arch='49',
                           tf_python='/path/to/tf-venv/bin/python')
    convert_tpu_checkpoint('spinenetmbconv-49-best/', 'out.pth', arch='49', family='mbconv')
"""
import os
import os.path as osp
import re
import subprocess
import tempfile
from collections import OrderedDict
from typing import Optional

import numpy as np
import torch

from ..errors import ConverterError
from . import tf_model_garden as tmg

__all__ = ['convert_tpu_checkpoint', 'convert_tpu_arrays', 'tpu_spinenet_layout',
           'convert_tpu_spinenet', 'tpu_retinanet_head_arrays', 'find_prefix', 'model_kwargs',
           'head_kwargs', 'reader_path', 'run_reader', 'TPU_ASPECT_RATIOS', 'FAMILIES',
           'HEADS', 'RECIPES', 'CONVERTER_NAME']

CONVERTER_NAME = 'tpu_legacy2mmdet'
#: tensorflow/tpu's default ``anchor.aspect_ratios`` (width / height, in its order).
TPU_ASPECT_RATIOS = (1.0, 2.0, 0.5)
SPINENET_SCOPE = 'spinenet'
#: 'spinenet' (``spinenet.py``) or 'mbconv' (``spinenet_mbconv.py`` -> ``SpineNetMobile``).
FAMILIES = ('spinenet', 'mbconv')
#: Heads of a checkpoint: 'retinanet', 'mask_rcnn' (RPN, box and mask heads),
#: 'classification' (ImageNet), or 'none' (the backbone alone); 'auto' converts whichever
#: the checkpoint has.
HEADS = ('auto', 'retinanet', 'mask_rcnn', 'classification', 'none')
#: BN and activation of each tensorflow/tpu recipe (its ``batch_norm_activation`` config):
#: RetinaNet SpineNet yamls keep the base config's BN (momentum 0.997, eps 1e-4) with swish.
#: Mask R-CNN yamls set BN momentum 0.99 / eps 1e-3 and keep the default relu; the
#: classification yamls BN momentum 0.9 / eps 1e-5 and swish.
RECIPES = {
    'retinanet': dict(norm_momentum=0.997, norm_eps=1e-4, activation='swish'),
    'mask_rcnn': dict(norm_momentum=0.99, norm_eps=1e-3, activation='relu'),
    'classification': dict(norm_momentum=0.9, norm_eps=1e-5, activation='swish'),
}
_STEM_KERNEL = f'{SPINENET_SCOPE}/conv2d/kernel'
_BN_VARS = (('gamma', 'weight'), ('beta', 'bias'), ('moving_mean', 'running_mean'),
            ('moving_variance', 'running_var'))


def _tpu_scope(part):
    """The variable scope tensorflow/tpu's SpineNet creates a :func:`tf_layout` part in."""
    keys = part.split('.')
    if keys[0] == 'blocks':
        i = int(keys[1])
        if keys[2] == 'resample':
            return f'{SPINENET_SCOPE}/sub_policy{i}/resample_with_alpha_resample_{i}_{keys[3]}'
        return f'{SPINENET_SCOPE}/sub_policy{i}/scale_permuted_block_{i + 2}'
    return SPINENET_SCOPE


def tpu_spinenet_layout(arch, min_level=3, max_level=7):
    """``(part, conv_name, bn_name, kernel_shape_hwio)`` of every conv + BN of tensorflow/tpu's
    SpineNet, in creation order, with the names it gives them (see the module docstring).

    ``part`` is :func:`.tf_model_garden.tf_layout`'s (``stem``, ``stem_blocks.{k}.{r}.conv1``,
    ``blocks.{i}.resample.{p}.down``, ``endpoints.{level}``, ...); the TPU code builds the same
    15 block specs as ``official/legacy`` in the same order, one name counter per scope.
    """
    namers = {}
    layout = []
    for part, _, _, shape in tmg.tf_layout(arch, min_level, max_level, legacy=True):
        scope = _tpu_scope(part)
        namer = namers.setdefault(scope, tmg._Namer())
        layout.append((part, f'{scope}/{namer("conv2d")}',
                       f'{scope}/{namer("batch_normalization")}', shape))
    return layout


def find_prefix(arrays, suffix=_STEM_KERNEL, shape=None):
    """What precedes ``suffix`` (e.g. ``spinenet/conv2d/kernel``) in the checkpoint's names:
    '' for the TPU checkpoints (a wrapping variable scope would show here)."""
    found = sorted(k[:-len(suffix)] for k in arrays
                   if k.endswith(suffix) and (k == suffix or k[-len(suffix) - 1] == '/')
                   and (shape is None or tuple(arrays[k].shape) == tuple(shape)))
    if not found:
        return None
    return min(found, key=len)


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def convert_tpu_spinenet(arrays, arch, min_level=3, max_level=7, prefix='', used=None):
    """tensorflow/tpu SpineNet variables -> ``mmdet_spine`` SpineNet state dict.

    Args:
        arrays (dict): Checkpoint name -> ndarray.
        arch (str): '49S', '49', '96', '143' or '190'.
        min_level, max_level (int): Output levels.
        prefix (str): What precedes ``spinenet/`` in the names (see :func:`find_prefix`).
        used (set, optional): Collects the names that were used.
    """
    state = OrderedDict()
    used = set() if used is None else used
    for part, conv, bn, shape in tpu_spinenet_layout(arch, min_level, max_level):
        name = f'{prefix}{conv}/kernel'
        if name not in arrays:
            raise ConverterError(f'{name} ({part} of SpineNet-{arch}) is not in the checkpoint: '
                                 'wrong arch?')
        kernel = arrays[name]
        if tuple(kernel.shape) != tuple(shape):
            raise ConverterError(f'{name} ({part}) has shape {tuple(kernel.shape)}, expected '
                                 f'{tuple(shape)} for SpineNet-{arch}: wrong arch?')
        ours_conv, ours_bn = tmg.ours_conv_bn(part)
        state[f'{ours_conv}.weight'] = _t(kernel.transpose(3, 2, 0, 1))
        used.add(name)
        for tf_key, key in _BN_VARS:
            bn_name = f'{prefix}{bn}/{tf_key}'
            if bn_name not in arrays:
                raise ConverterError(f'{bn_name} ({part}) is not in the checkpoint')
            state[f'{ours_bn}.{key}'] = _t(arrays[bn_name])
            used.add(bn_name)
        state[f'{ours_bn}.num_batches_tracked'] = torch.tensor(0, dtype=torch.long)
    return state


# --------------------------------------------------------------------------------------------
# SpineNet-MBConv: tensorflow/tpu spinenet_mbconv.py -> mmdet_spine SpineNetMobile
# --------------------------------------------------------------------------------------------
MBCONV_SCOPE = 'spinenet_mbconv'
#: The TPU's SE uses swish inside and a sigmoid gate (``nn_ops.squeeze_excitation``).
MBCONV_SE_ACT = ('Swish', 'Sigmoid')


def tpu_mbconv_layout(arch, min_level=3, max_level=7):
    """``(ours, tpu_name, kind)`` of every layer of tensorflow/tpu's SpineNet-MBConv, ``ours``
    as in :func:`.tf_model_garden.tf_mobile_layout`, ``kind`` 'conv', 'depthwise',
    'conv_bias' (the SE's convs) or 'bn'.

    Scopes as SpineNet's (``spinenet_mbconv/``, ``sub_policy{i}/``,
    ``resample_with_sepconv_resample_{i}_{p}/``, ``scale_permuted_block_{i + 2}/``; stem,
    stem blocks and endpoints in the root); an MBConv block creates its expansion conv + BN,
    the depthwise conv + BN, the SE's two biased convs (called in that order, so named
    before the projection) and the projection conv + BN; a resampling one depthwise 3x3/2
    conv + BN per level down, then the 1x1 conv + BN.
    """
    from ..models.backbones.spinenet_mobile import SpineNetMobile
    net = tmg._build_on_meta(SpineNetMobile, arch=str(arch), min_level=min_level,
                             max_level=max_level)
    plan = net.plan
    namers = {}
    layout = []

    def name(scope, base):
        return f'{scope}/{namers.setdefault(scope, tmg._Namer())(base)}'

    def conv_bn(scope, ours, kind='conv'):
        layout.append((f'{ours}.conv', name(scope, 'depthwise_conv2d' if kind == 'depthwise'
                                                   else 'conv2d'), kind))
        layout.append((f'{ours}.bn', name(scope, 'batch_normalization'), 'bn'))

    def mbconv(scope, ours):
        conv_bn(scope, f'{ours}.expand_conv')
        conv_bn(scope, f'{ours}.depthwise_conv', 'depthwise')
        layout.append((f'{ours}.se.conv1.conv', name(scope, 'conv2d'), 'conv_bias'))
        layout.append((f'{ours}.se.conv2.conv', name(scope, 'conv2d'), 'conv_bias'))
        conv_bn(scope, f'{ours}.linear_conv')

    root = MBCONV_SCOPE
    conv_bn(root, 'stem_conv')
    mbconv(root, 'init_blocks.0.0')
    mbconv(root, 'init_blocks.1.0')
    for i, spec in enumerate(net.block_specs):
        for p, parent in enumerate(plan.parents[i]):
            scope = f'{root}/sub_policy{i}/resample_with_sepconv_resample_{i}_{p}'
            for d in range(spec.level - plan.levels[parent]):
                conv_bn(scope, f'blocks.{i + 1}.resample.{p}.down.{d}', 'depthwise')
            conv_bn(scope, f'blocks.{i + 1}.resample.{p}.conv_out')
        mbconv(f'{root}/sub_policy{i}/scale_permuted_block_{i + 2}', f'blocks.{i + 1}.layers.0')
    for level in plan.endpoints:
        conv_bn(root, f'endpoints.{level}')
    return layout


def convert_tpu_mbconv(arrays, arch, min_level=3, max_level=7, prefix='', used=None):
    """tensorflow/tpu SpineNet-MBConv variables -> ``mmdet_spine`` SpineNetMobile state dict,
    through :func:`.tf_model_garden.convert_mobile_arrays` (the TPU names are renamed to the
    TF2 ones layer by layer, both layouts keyed by our module)."""
    used = set() if used is None else used
    tf2 = {ours: tf_name for ours, tf_name, _ in tmg.tf_mobile_layout(arch, min_level, max_level)}
    renamed = {}
    for ours, tpu_name, kind in tpu_mbconv_layout(arch, min_level, max_level):
        leaves = {'bn': [v for v, _ in _BN_VARS], 'depthwise': ['depthwise_kernel'],
                  'conv': ['kernel'], 'conv_bias': ['kernel', 'bias']}[kind]
        for leaf in leaves:
            name = f'{prefix}{tpu_name}/{leaf}'
            if name not in arrays:
                raise ConverterError(f'{name} ({ours} of SpineNet-MBConv-{arch}) is not in the '
                                     'checkpoint: wrong arch?')
            renamed[f'{tf2[ours]}/{leaf}'] = arrays[name]
            used.add(name)
    return tmg.convert_mobile_arrays(renamed, arch, min_level, max_level)


# --------------------------------------------------------------------------------------------
# RetinaNet head: tensorflow/tpu heads.RetinanetHead -> tf_model_garden's head layout
# --------------------------------------------------------------------------------------------
_RETINA_NETS = (('class_net', 'class', 'classnet', 'scores'),
                ('box_net', 'box', 'boxnet', 'boxes'))


def tpu_retinanet_head_arrays(arrays, prefix='', min_level=3, used=None):
    """The TPU RetinaNet head's variables under :mod:`.tf_model_garden`'s head names
    (``head/classnet-conv_{i}/kernel``, ``head/classnet-conv-norm_{level}_{i}/gamma``,
    ``head/scores/kernel``, ...), or None without a head. Separable heads (``use_separable_conv``)
    keep their ``depthwise_kernel`` / ``pointwise_kernel``."""
    base = f'{prefix}retinanet/'
    if not any(k.startswith(base) for k in arrays):
        return None
    used = set() if used is None else used
    out = OrderedDict()
    for tpu_net, tpu_layer, ours_net, predictor in _RETINA_NETS:
        i = 0
        while any(f'{base}{tpu_net}/{tpu_layer}-{i}/{v}' in arrays
                  for v in ('kernel', 'depthwise_kernel')):
            for var in ('kernel', 'depthwise_kernel', 'pointwise_kernel', 'bias'):
                name = f'{base}{tpu_net}/{tpu_layer}-{i}/{var}'
                if name in arrays:
                    out[f'{tmg.HEAD_PREFIX}{ours_net}-conv_{i}/{var}'] = arrays[name]
                    used.add(name)
            level = min_level
            while f'{base}{tpu_net}/{tpu_layer}-{i}-{level}/gamma' in arrays:
                for var, _ in _BN_VARS:
                    name = f'{base}{tpu_net}/{tpu_layer}-{i}-{level}/{var}'
                    out[f'{tmg.HEAD_PREFIX}{ours_net}-conv-norm_{level}_{i}/{var}'] = \
                        arrays[name]
                    used.add(name)
                level += 1
            i += 1
        for var in ('kernel', 'depthwise_kernel', 'pointwise_kernel', 'bias'):
            name = f'{base}{tpu_net}/{tpu_layer}-predict/{var}'
            if name in arrays:
                out[f'{tmg.HEAD_PREFIX}{predictor}/{var}'] = arrays[name]
                used.add(name)
    return out


# --------------------------------------------------------------------------------------------
# Mask R-CNN heads: tensorflow/tpu heads.{RpnHead,FastrcnnHead,MaskrcnnHead} (use_batch_norm)
# --------------------------------------------------------------------------------------------
#: tensorflow/tpu's Fast R-CNN ``regression_weights`` (y, x, h, w); mmdet's stds (x, y, w, h)
#: (0.1, 0.1, 0.2, 0.2) are their inverses.
FRCNN_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
_TF_COORD = (1, 0, 3, 2)  # ours x, y, w, h <- TF y, x, h, w


def _bn_state(arrays, tpu_bn, ours, used, bias=None):
    """Our BN ``ours`` from the TPU BN ``tpu_bn``; a preceding conv's ``bias`` is folded
    into the running mean (exact in inference)."""
    state = OrderedDict()
    for tf_key, key in _BN_VARS:
        name = f'{tpu_bn}/{tf_key}'
        if name not in arrays:
            raise ConverterError(f'{name} is not in the checkpoint')
        value = arrays[name]
        if tf_key == 'moving_mean' and bias is not None:
            value = value - bias
        state[f'{ours}.{key}'] = _t(value)
        used.add(name)
    state[f'{ours}.num_batches_tracked'] = torch.tensor(0, dtype=torch.long)
    return state


def _get(arrays, name, used):
    if name not in arrays:
        raise ConverterError(f'{name} is not in the checkpoint')
    used.add(name)
    return arrays[name]


def _count(arrays, fmt):
    n = 0
    while fmt.format(n) in arrays:
        n += 1
    return n


def has_mask_rcnn(arrays, prefix=''):
    return f'{prefix}rpn_head/rpn/kernel' in arrays


def convert_rpn_head(arrays, prefix='', min_level=3, max_level=7, ratios=(0.5, 1.0, 2.0),
                     used=None):
    """TPU ``RpnHead`` (one shared 3x3 conv ``rpn`` with bias, BN ``rpn-l{level}-bn`` per level,
    1x1 ``rpn-class`` / ``rpn-box``) -> ``RPNSepBNHead`` (keys without ``rpn_head.``):
    conv bias folded into each level's BN, anchors reordered (TPU: ``num_scales`` 1, aspect
    ratios ``[1, 2, 0.5]``), box deltas (ty, tx, th, tw) -> (dx, dy, dw, dh) (neither side
    scales RPN deltas)."""
    used = set() if used is None else used
    base = f'{prefix}rpn_head'
    convs = ['rpn'] + [f'rpn-{i}' for i in range(1, 8) if f'{base}/rpn-{i}/kernel' in arrays]
    state = OrderedDict()
    for i, conv in enumerate(convs):
        kernel = _get(arrays, f'{base}/{conv}/kernel', used)
        bias = _get(arrays, f'{base}/{conv}/bias', used)
        for level in range(min_level, max_level + 1):
            ours = f'rpn_convs.{level - min_level}.{i}'
            state[f'{ours}.conv.weight'] = _t(kernel.transpose(3, 2, 0, 1))
            bn = f'{base}/rpn-l{level}-bn' + ('' if i == 0 else f'-{i}')
            state.update(_bn_state(arrays, bn, f'{ours}.bn', used, bias))
    cls_k = _get(arrays, f'{base}/rpn-class/kernel', used)
    num_anchors = cls_k.shape[-1]
    perm = tmg.anchor_permutation(num_anchors // len(TPU_ASPECT_RATIOS), TPU_ASPECT_RATIOS,
                                  ratios, True)
    state['rpn_cls.weight'] = _t(cls_k[..., perm].transpose(3, 2, 0, 1))
    state['rpn_cls.bias'] = _t(_get(arrays, f'{base}/rpn-class/bias', used)[perm])
    rows = [a * 4 + _TF_COORD[j] for a in perm for j in range(4)]
    box_k = _get(arrays, f'{base}/rpn-box/kernel', used)
    state['rpn_reg.weight'] = _t(box_k[..., rows].transpose(3, 2, 0, 1))
    state['rpn_reg.bias'] = _t(_get(arrays, f'{base}/rpn-box/bias', used)[rows])
    return state


def _bn_names(arrays, scope, count):
    """The first ``count`` unnamed BNs of ``scope`` (``batch_normalization``, ``_1``, ...)."""
    names = [f'{scope}/batch_normalization' + ('' if k == 0 else f'_{k}') for k in range(count)]
    for name in names:
        if f'{name}/gamma' not in arrays:
            raise ConverterError(f'{name}/gamma is not in the checkpoint')
    return names


def convert_box_head(arrays, prefix='', classes='auto', target_stds=(0.1, 0.1, 0.2, 0.2),
                     used=None):
    """TPU ``FastrcnnHead`` (``conv_{i}`` + BN, ``fc6``... + BN, ``class-predict``,
    ``box-predict``; its BNs are unnamed: ``batch_normalization``, ``_1``, ... in creation
    order) -> ``NormActConvFCBBoxHead`` (keys without ``roi_head.bbox_head.``).

    The fc rows are permuted from TF's (y, x, c) flattening to ours (c, y, x); TF's class 0
    (background) becomes mmdet's last class; box rows per class reordered (dx, dy, dw, dh)
    and scaled from TF's ``regression_weights`` (10, 10, 5, 5) to mmdet's stds
    (0.1, 0.1, 0.2, 0.2) (the same scaling: nothing changes)."""
    used = set() if used is None else used
    base = f'{prefix}fast_rcnn_head'
    num_convs = _count(arrays, base + '/conv_{}/kernel')
    fcs = [f'fc{6 + j}' for j in range(8) if f'{base}/fc{6 + j}/kernel' in arrays]
    bns = _bn_names(arrays, base, num_convs + len(fcs))
    state = OrderedDict()
    channels = None
    for i in range(num_convs):
        kernel = _get(arrays, f'{base}/conv_{i}/kernel', used)
        state[f'shared_convs.{i}.conv.weight'] = _t(kernel.transpose(3, 2, 0, 1))
        state.update(_bn_state(arrays, bns[i], f'shared_convs.{i}.bn', used,
                               _get(arrays, f'{base}/conv_{i}/bias', used)))
        channels = kernel.shape[-1]
    for j, fc in enumerate(fcs):
        kernel = _get(arrays, f'{base}/{fc}/kernel', used)  # (in, out)
        if j == 0:
            if channels is None:
                raise ConverterError('a Fast R-CNN head without convs is not converted')
            side = int(round((kernel.shape[0] / channels) ** 0.5))
            if side * side * channels != kernel.shape[0]:
                raise ConverterError(f'{base}/{fc}/kernel: {kernel.shape[0]} inputs are not '
                                     f'an S x S x {channels} RoI feature')
            # TF rows (y, x, c) -> ours (c, y, x)
            kernel = kernel.reshape(side, side, channels, -1).transpose(2, 0, 1, 3)
            kernel = kernel.reshape(side * side * channels, -1)
        state[f'shared_fcs.{j}.weight'] = _t(kernel.T)
        state[f'shared_fcs.{j}.bias'] = _t(_get(arrays, f'{base}/{fc}/bias', used))
        state.update(_bn_state(arrays, bns[num_convs + j], f'shared_fc_norms.{j}', used))
    cls_k = _get(arrays, f'{base}/class-predict/kernel', used)
    keep = [c for c in tmg.class_indices(cls_k.shape[-1], classes) if c != 0]
    cols = keep + [0]  # mmdet: foreground classes, then the background
    state['fc_cls.weight'] = _t(cls_k[:, cols].T)
    state['fc_cls.bias'] = _t(_get(arrays, f'{base}/class-predict/bias', used)[cols])
    box_k = _get(arrays, f'{base}/box-predict/kernel', used).astype(np.float64)
    box_b = _get(arrays, f'{base}/box-predict/bias', used).astype(np.float64)
    if box_k.shape[-1] == 4:  # class-agnostic
        rows = list(_TF_COORD)
    else:
        rows = [c * 4 + _TF_COORD[j] for c in keep for j in range(4)]
    weights = np.array([FRCNN_BOX_WEIGHTS[_TF_COORD[j]] for j in range(4)])
    # TF decodes raw / weights, mmdet pred * std: rows scaled by 1 / (weight x std)
    scale = np.tile(1.0 / (weights * np.asarray(target_stds, np.float64)), len(rows) // 4)
    state['fc_reg.weight'] = _t((box_k[:, rows] * scale).T)
    state['fc_reg.bias'] = _t(box_b[rows] * scale)
    return state


def convert_mask_head(arrays, prefix='', classes='auto', used=None):
    """TPU ``MaskrcnnHead`` (``mask-conv-l{i}`` + BN, ``conv5-mask`` (2x2/2 deconv) + BN,
    ``mask_fcn_logits``; unnamed BNs in creation order) -> ``NormActFCNMaskHead`` (keys
    without ``roi_head.mask_head.``): conv biases folded into the BNs (the deconv's too), the
    deconv kernel (kh, kw, out, in) -> (in, out, kh, kw), TF's background mask dropped."""
    used = set() if used is None else used
    base = f'{prefix}mask_head'
    num_convs = _count(arrays, base + '/mask-conv-l{}/kernel')
    bns = _bn_names(arrays, base, num_convs + 1)
    state = OrderedDict()
    for i in range(num_convs):
        kernel = _get(arrays, f'{base}/mask-conv-l{i}/kernel', used)
        state[f'convs.{i}.conv.weight'] = _t(kernel.transpose(3, 2, 0, 1))
        state.update(_bn_state(arrays, bns[i], f'convs.{i}.bn', used,
                               _get(arrays, f'{base}/mask-conv-l{i}/bias', used)))
    deconv = _get(arrays, f'{base}/conv5-mask/kernel', used)
    state['upsample.weight'] = _t(deconv.transpose(3, 2, 0, 1))
    state['upsample.bias'] = _t(_get(arrays, f'{base}/conv5-mask/bias', used))
    state.update(_bn_state(arrays, bns[num_convs], 'upsample_norm', used))
    logits = _get(arrays, f'{base}/mask_fcn_logits/kernel', used)
    keep = [c for c in tmg.class_indices(logits.shape[-1], classes) if c != 0]
    state['conv_logits.weight'] = _t(logits[..., keep].transpose(3, 2, 0, 1))
    state['conv_logits.bias'] = _t(_get(arrays, f'{base}/mask_fcn_logits/bias', used)[keep])
    return state


# --------------------------------------------------------------------------------------------
# ImageNet classifier: tensorflow/tpu heads.ClassificationHead
# --------------------------------------------------------------------------------------------
def has_classification_head(arrays, prefix=''):
    return f'{prefix}classification_head/dense/kernel' in arrays


def convert_classification_head(arrays, prefix='', used=None):
    """TPU ``ClassificationHead`` (``aggregation='all'``: levels upsampled to the finest and
    averaged, global average pool, ``dense`` over 1001 classes, class 0 the background) ->
    ``LinearClassificationHead`` ``fc`` over the 1000 ImageNet classes (keys without
    ``head.``). Only the published configuration is converted: no embedding conv
    (``endpoints_num_filters=0``)."""
    used = set() if used is None else used
    base = f'{prefix}classification_head'
    extra = sorted(k for k in arrays if k.startswith(base + '/') and '/dense/' not in k)
    if extra:
        raise ConverterError(f'the classification head has an embedding layer ({extra[0]}): '
                             'only endpoints_num_filters=0 heads are converted')
    kernel = _get(arrays, f'{base}/dense/kernel', used)
    bias = _get(arrays, f'{base}/dense/bias', used)
    keep = slice(1, None) if kernel.shape[-1] == 1001 else slice(None)  # drop the background
    return OrderedDict([('fc.weight', _t(kernel[:, keep].T)), ('fc.bias', _t(bias[keep]))])


# --------------------------------------------------------------------------------------------
# Model options that compute what the TPU model computes
# --------------------------------------------------------------------------------------------
def _norm_cfg(recipe):
    r = RECIPES[recipe]
    return dict(type='BN', momentum=round(1 - r['norm_momentum'], 6), eps=r['norm_eps'],
                requires_grad=True)


def model_kwargs(arch, min_level=3, max_level=7, recipe='retinanet', activation=None,
                 family='spinenet'):
    """Keyword arguments of ``mmdet_spine``'s SpineNet (``family='mbconv'``: SpineNetMobile)
    that computes what tensorflow/tpu's does with a ``recipe``'s BN / activation
    (:data:`RECIPES`): SpineNet ``padding_mode='tf_tpu'``; SpineNet-MBConv has no max-pool and
    pads its stride-2 (depthwise) convs symmetrically, PyTorch's default padding, and gets
    the TPU's SE activations (:data:`MBCONV_SE_ACT`)."""
    act = activation or RECIPES[recipe]['activation']
    if family == 'mbconv':
        kwargs = tmg.model_kwargs(arch, min_level, max_level, activation=act, family='mobile')
        kwargs.update(padding_mode='pytorch', norm_cfg=_norm_cfg(recipe),
                      se_act_cfg=MBCONV_SE_ACT)
        return kwargs
    kwargs = tmg.model_kwargs(arch, min_level, max_level, activation=act)
    kwargs.update(padding_mode='tf_tpu', norm_cfg=_norm_cfg(recipe))
    return kwargs


def head_kwargs(head_arrays, num_classes, recipe='retinanet', anchor_size=3.0):
    """``RetinaSepBNActHead`` keyword arguments for a converted TPU head (TF's anchors of
    ``anchor_size`` x stride, mmdet's ``scale_major`` order, the recipe's BN)."""
    spec = tmg.retinanet_head_spec(head_arrays)
    kwargs = tmg.retinanet_head_kwargs(spec, num_classes, anchor_size=anchor_size,
                                       activation=RECIPES[recipe]['activation'])
    kwargs['norm_cfg'] = _norm_cfg(recipe)
    return kwargs


# --------------------------------------------------------------------------------------------
# Whole checkpoints
# --------------------------------------------------------------------------------------------
def _check_all_used(arrays, used):
    left = sorted(k for k in arrays if k not in used and not k.startswith('__'))
    if left:
        raise ConverterError(f'{len(left)} checkpoint variables were not mapped, e.g. '
                             f'{left[:5]}: wrong arch or head?')


def convert_tpu_arrays(arrays, arch, family='spinenet', head='auto', classes='auto',
                       min_level=3, max_level=7, prefix=None, check=True):
    """Torch stage: the arrays of a legacy TPU checkpoint (name -> ndarray) -> state dict.

    Args:
        arrays (dict): From the TF stage's ``.npz`` (:func:`.tf_model_garden.load_npz`).
        arch (str): SpineNet arch ('49S', '49', '96', '143', '190'; 'mbconv': '49', '49S',
            '49XS').
        family (str): 'spinenet' or 'mbconv' (SpineNet-MBConv -> ``SpineNetMobile``).
        head (str): 'auto' (whatever head the checkpoint holds), 'retinanet', 'mask_rcnn',
            'classification' or 'none' (backbone only).
        classes (str): Head classes, see :func:`.tf_model_garden.class_indices` (TF's
            background column is never kept: mmdet's Mask R-CNN puts its own last).
        min_level, max_level (int): Output levels (the TPU models use 3 and 7).
        prefix (str, optional): Prefix of the backbone keys: default '' for a backbone alone,
            'backbone.' with a head (then the keys are a detector's / classifier's: RetinaNet
            ``bbox_head.*``; Mask R-CNN ``rpn_head.*``, ``roi_head.bbox_head.*``,
            ``roi_head.mask_head.*``; SpineClassifier ``head.*``).
        check (bool): Compare keys and shapes with freshly built modules.

    Returns:
        OrderedDict: torch tensors.
    """
    if family not in FAMILIES:
        raise ConverterError(f'family={family!r}; valid choices: {", ".join(FAMILIES)}')
    if head not in HEADS:
        raise ConverterError(f'head={head!r}; valid choices: {", ".join(HEADS)}')
    arch = str(arch)
    scope = MBCONV_SCOPE if family == 'mbconv' else SPINENET_SCOPE
    ckpt_prefix = find_prefix(arrays, f'{scope}/conv2d/kernel')
    if ckpt_prefix is None:
        other = SPINENET_SCOPE if family == 'mbconv' else MBCONV_SCOPE
        hint = (f" (it has '{other}/...': family={'spinenet' if family == 'mbconv' else 'mbconv'}?)"
                if find_prefix(arrays, f'{other}/conv2d/kernel') is not None else '')
        raise ConverterError(f'no tensorflow/tpu {scope} in the checkpoint (no variable named '
                             f"'{scope}/conv2d/kernel'){hint}")
    used = set()
    if family == 'mbconv':
        backbone = convert_tpu_mbconv(arrays, arch, min_level, max_level, ckpt_prefix, used)
    else:
        backbone = convert_tpu_spinenet(arrays, arch, min_level, max_level, ckpt_prefix, used)
    if check:
        try:
            tmg.check_against_model(backbone, model_kwargs(arch, min_level, max_level,
                                                           family=family),
                                    'mobile' if family == 'mbconv' else 'spinenet')
        except ConverterError as e:
            name = 'SpineNet-MBConv' if family == 'mbconv' else 'SpineNet'
            raise ConverterError(f'the checkpoint does not fit {name}-{arch} (wrong arch?): '
                                 f'{e}') from None
    head_arrays = None
    if head in ('auto', 'retinanet'):
        head_arrays = tpu_retinanet_head_arrays(arrays, ckpt_prefix, min_level, used)
        if head == 'retinanet' and head_arrays is None:
            raise ConverterError('head=retinanet but the checkpoint has no retinanet/ '
                                 'variables')
    mask_rcnn = head == 'mask_rcnn' or (head == 'auto' and has_mask_rcnn(arrays, ckpt_prefix))
    if mask_rcnn and not has_mask_rcnn(arrays, ckpt_prefix):
        raise ConverterError('head=mask_rcnn but the checkpoint has no rpn_head/ variables')
    classifier = head == 'classification' or (
        head == 'auto' and has_classification_head(arrays, ckpt_prefix))
    if prefix is None:
        prefix = 'backbone.' if head_arrays is not None or mask_rcnn or classifier else ''
    state = OrderedDict((prefix + k, v) for k, v in backbone.items())
    if head_arrays is not None:
        converted = tmg.convert_retinanet_head(head_arrays, min_level, classes=classes,
                                               tf_aspect_ratios=TPU_ASPECT_RATIOS)
        if check:
            spec = tmg.retinanet_head_spec(head_arrays, min_level)
            num_classes = len(tmg.class_indices(spec['num_classes'], classes))
            tmg.check_head_against_model(converted, head_kwargs(head_arrays, num_classes))
        state.update(('bbox_head.' + k, v) for k, v in converted.items())
    if mask_rcnn:
        for key, part in (('rpn_head.', convert_rpn_head(arrays, ckpt_prefix, min_level,
                                                         max_level, used=used)),
                          ('roi_head.bbox_head.', convert_box_head(arrays, ckpt_prefix, classes,
                                                                   used=used)),
                          ('roi_head.mask_head.', convert_mask_head(arrays, ckpt_prefix,
                                                                    classes, used=used))):
            state.update((key + k, v) for k, v in part.items())
    if classifier:
        state.update(('head.' + k, v) for k, v in
                     convert_classification_head(arrays, ckpt_prefix, used).items())
    if head != 'none':
        _check_all_used(arrays, used)
    return state


def reader_path() -> str:
    """Path of the TF stage (:mod:`.tpu_legacy_reader`), to run with a TF interpreter."""
    return osp.join(osp.dirname(osp.abspath(__file__)), 'tpu_legacy_reader.py')


def run_reader(src: str, dst_npz: str, tf_python: Optional[str] = None) -> None:
    """Run the TF stage in the TensorFlow interpreter (``tf_python`` or
    ``$MMDET_SPINE_TF_PYTHON``).

    Raises:
        ConverterError: No interpreter, or the checkpoint cannot be read (its one-line reason).
    """
    python = tmg.resolve_tf_python(tf_python)
    proc = subprocess.run([python, '-P', reader_path(), str(src), dst_npz],
                          capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        reason = lines[-1] if lines else f'exit code {proc.returncode}'
        raise ConverterError(f'{src}: {re.sub(r"^error: ", "", reason)}')


def convert_tpu_checkpoint(src, out=None, arch='49', family='spinenet', head='auto',
                           classes='auto', prefix=None, check=True, tf_python=None, meta=None):
    """Convert a legacy tensorflow/tpu checkpoint (or the TF stage's ``.npz`` of it).

    Args:
        src (str): Checkpoint prefix (``model.ckpt-NNNN``), a directory holding one, or
            ``.npz``.
        out (str, optional): Write ``{'state_dict': ..., 'meta': ...}`` here (``torch.save``).
        arch, family, head, classes, prefix, check: See :func:`convert_tpu_arrays`.
        tf_python (str, optional): TensorFlow interpreter for a checkpoint.
        meta (dict, optional): Extra ``meta`` entries of the written file.

    Returns:
        OrderedDict: The state dict.
    """
    if str(src).endswith('.npz'):
        arrays, _ = tmg.load_npz(src)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            npz = osp.join(tmp, 'tpu_arrays.npz')
            run_reader(src, npz, tf_python)
            arrays, _ = tmg.load_npz(npz)
    arrays.pop('__order__', None)
    state = convert_tpu_arrays(arrays, arch, family, head, classes, prefix=prefix, check=check)
    if out:
        info = {'converter': CONVERTER_NAME, 'converted_from': str(src), 'arch': str(arch),
                'family': family, **(meta or {})}
        torch.save({'state_dict': state, 'meta': info}, out)
    return state
