"""Convert an rwightman ``effdet`` EfficientDet checkpoint into ``mmdet_spine``'s EfficientDet.

effdet (https://github.com/rwightman/efficientdet-pytorch) ports google/automl's TF weights
(``tf_efficientdet_d0`` .. ``d7x``, the Det-AdvProp ``tf_efficientdet_d0_ap`` .. ``d5_ap`` and
``tf_efficientdet_lite0`` .. ``lite4`` / ``lite3x``); its state dict maps one to one onto the
model that ``mmdet_spine.models.detectors.efficientdet_model_cfg(variant)`` describes (the
EfficientNet-Lite blocks simply have no ``se.*`` keys; the same rules cover them):

================================================  ===============================================
effdet                                            mmdet_spine
================================================  ===============================================
``backbone.conv_stem`` / ``bn1``                  ``backbone.stem.conv`` / ``.bn``
``backbone.blocks.S.B.conv_pw`` / ``bn1`` (IR)    ``backbone.stages.S.B.expand_conv.conv/.bn``
``...conv_dw`` / ``bn2`` (``bn1`` in DS blocks)   ``...depthwise_conv.conv`` / ``.bn``
``...se.conv_reduce`` / ``conv_expand``           ``...se.conv1.conv`` / ``se.conv2.conv``
``...conv_pwl`` / ``bn3`` (``conv_pw``/``bn2``    ``...linear_conv.conv`` / ``.bn``
in DS blocks)
``fpn.resample.L`` (extra levels)                 ``neck.extra_levels.(L - 3)``
``fpn.cell.C.fnode.N.combine.edge_weights``       ``neck.stages.C.nodes.N.fusion.weight``
``...combine.resample.<node id>``                 ``...resample.<position of that id>``
``...after_combine.conv.conv_dw/conv_pw/bn``      ``...conv.depthwise_conv.conv`` /
                                                  ``pointwise_conv.conv`` / ``pointwise_conv.bn``
``class_net`` / ``box_net``                       ``bbox_head.cls_*`` / ``bbox_head.reg_*``
``.conv_rep.I`` / ``.bn_rep.I.L.bn`` / ``predict``  ``_convs.I`` / ``_norms.I.L`` / ``_pred``
================================================  ===============================================

effdet's box net predicts (ty, tx, th, tw) per anchor; mmdet's ``DeltaXYWHBBoxCoder`` wants
(dx, dy, dw, dh), so the output channels of the box prediction conv are permuted. Anchor order
(scale-major, aspects (1, 1), (1.4, 0.7), (0.7, 1.4)) already matches
``EfficientDetAnchorGenerator``.

The released models predict COCO's 90 original category ids (class ``k`` is id ``k + 1``).
``--num-classes 80`` keeps only the 80 ids that exist, in mmdet ``CocoDataset`` label order, so
the converted model runs on mmdet's standard COCO evaluation.

Usage (``tools/model_converters/effdet2mmdet.py`` is the command-line wrapper)::

    python tools/model_converters/effdet2mmdet.py tf_efficientdet_d0_34-f153e0cf.pth \\
        efficientdet_d0_effdet.pth [--num-classes 80]

or from Python::

    from mmdet_spine.converters.effdet import convert_file
    convert_file('tf_efficientdet_d0_34-f153e0cf.pth', 'out.pth', num_classes=80)

The output (``{'state_dict': ..., 'meta': ...}``, tensors only) loads with
``weights_only=True`` into ``MODELS.build(efficientdet_model_cfg('d0', num_classes=N))``.
"""
import re
from collections import OrderedDict
from typing import Dict, Optional

import torch

from ..errors import ConverterError
from .coco_classes import COCO80_CATEGORY_IDS

__all__ = ['convert', 'convert_file', 'load_effdet_state_dict', 'COCO80_CATEGORY_IDS']

#: Renames inside one backbone block, by block kind.
_IR_BLOCK = {'conv_pw': 'expand_conv.conv', 'bn1': 'expand_conv.bn',
             'conv_dw': 'depthwise_conv.conv', 'bn2': 'depthwise_conv.bn',
             'conv_pwl': 'linear_conv.conv', 'bn3': 'linear_conv.bn',
             'se.conv_reduce': 'se.conv1.conv', 'se.conv_expand': 'se.conv2.conv'}
_DS_BLOCK = {'conv_dw': 'depthwise_conv.conv', 'bn1': 'depthwise_conv.bn',
             'conv_pw': 'linear_conv.conv', 'bn2': 'linear_conv.bn',
             'se.conv_reduce': 'se.conv1.conv', 'se.conv_expand': 'se.conv2.conv'}
_SEP_CONV = {'conv_dw': 'depthwise_conv.conv', 'conv_pw': 'pointwise_conv.conv'}
#: (ty, tx, th, tw) -> (dx, dy, dw, dh): output i of ours takes effdet's channel _BOX_ORDER[i].
_BOX_ORDER = (1, 0, 3, 2)
_NUM_BACKBONE_LEVELS = 3


def _bifpn_inputs(num_levels: int):
    from mmdet_spine.models.necks.bifpn import bifpn_topology
    return [inputs for _, inputs in bifpn_topology(num_levels)]


def _split_block_key(rest: str, table: Dict[str, str]) -> str:
    for src in sorted(table, key=len, reverse=True):
        if rest.startswith(src + '.'):
            return table[src] + rest[len(src):]
    raise KeyError(rest)


def convert(src: Dict[str, torch.Tensor],
            num_classes: int = 90) -> 'OrderedDict[str, torch.Tensor]':
    """Map an effdet ``EfficientDet`` state dict onto ``mmdet_spine``'s EfficientDet.

    Args:
        src (dict[str, Tensor]): effdet's state dict (``model.state_dict()`` or a released
            checkpoint).
        num_classes (int): 90 keeps effdet's classes; 80 keeps the COCO-80 subset
            (:data:`COCO80_CATEGORY_IDS`, from a 90-class checkpoint). Default: 90.

    Returns:
        OrderedDict[str, Tensor]: The same tensors under mmdet_spine's names.

    Raises:
        ConverterError: For a key no rule covers (so nothing is silently dropped), or a
            ``num_classes`` the checkpoint cannot give.
    """
    if num_classes not in (80, 90):
        raise ConverterError(f'num_classes={num_classes}: choose 90 (as effdet) or 80 (COCO-80)')
    node_ids = {int(m.group(1)) for k in src
                for m in [re.match(r'fpn\.cell\.0\.fnode\.(\d+)\.', k)] if m}
    num_levels = (max(node_ids) + 1) // 2 + 1 if node_ids else 5
    node_inputs = _bifpn_inputs(num_levels)
    ds_blocks = {m.group(1) for k in src
                 for m in [re.match(r'backbone\.blocks\.(\d+\.\d+)\.', k)] if m}
    ds_blocks -= {m.group(1) for k in src
                  for m in [re.match(r'backbone\.blocks\.(\d+\.\d+)\.conv_pwl\.', k)] if m}

    out = OrderedDict()
    for key, value in src.items():
        new = None
        if key.startswith('backbone.conv_stem.'):
            new = 'backbone.stem.conv.' + key[len('backbone.conv_stem.'):]
        elif key.startswith('backbone.bn1.'):
            new = 'backbone.stem.bn.' + key[len('backbone.bn1.'):]
        elif m := re.match(r'backbone\.blocks\.(\d+\.\d+)\.(.+)$', key):
            table = _DS_BLOCK if m.group(1) in ds_blocks else _IR_BLOCK
            new = f'backbone.stages.{m.group(1)}.' + _split_block_key(m.group(2), table)
        elif m := re.match(r'fpn\.resample\.(\d+)\.(.+)$', key):
            new = f'neck.extra_levels.{int(m.group(1)) - _NUM_BACKBONE_LEVELS}.{m.group(2)}'
        elif m := re.match(r'fpn\.cell\.(\d+)\.fnode\.(\d+)\.(.+)$', key):
            cell, node, rest = m.group(1), int(m.group(2)), m.group(3)
            prefix = f'neck.stages.{cell}.nodes.{node}.'
            if rest == 'combine.edge_weights':
                new = prefix + 'fusion.weight'
            elif r := re.match(r'combine\.resample\.(\d+)\.(.+)$', rest):
                position = node_inputs[node].index(int(r.group(1)))
                new = prefix + f'resample.{position}.{r.group(2)}'
            elif r := re.match(r'after_combine\.conv\.(conv_dw|conv_pw|bn)\.(.+)$', rest):
                part = {'bn': 'pointwise_conv.bn', **_SEP_CONV}[r.group(1)]
                new = prefix + f'conv.{part}.{r.group(2)}'
        elif m := re.match(r'(class_net|box_net)\.(.+)$', key):
            branch = 'cls' if m.group(1) == 'class_net' else 'reg'
            rest = m.group(2)
            if r := re.match(r'conv_rep\.(\d+)\.(conv_dw|conv_pw)\.(.+)$', rest):
                new = f'bbox_head.{branch}_convs.{r.group(1)}.{_SEP_CONV[r.group(2)]}.{r.group(3)}'
            elif r := re.match(r'bn_rep\.(\d+)\.(\d+)\.bn\.(.+)$', rest):
                new = f'bbox_head.{branch}_norms.{r.group(1)}.{r.group(2)}.{r.group(3)}'
            elif r := re.match(r'predict\.(conv_dw|conv_pw)\.(.+)$', rest):
                new = f'bbox_head.{branch}_pred.{_SEP_CONV[r.group(1)]}.{r.group(2)}'
                if branch == 'reg' and r.group(1) == 'conv_pw':
                    value = _permute_box_channels(value)
                elif branch == 'cls' and r.group(1) == 'conv_pw' and num_classes == 80:
                    value = _coco80_channels(value)
        if new is None:
            raise ConverterError(f'no conversion rule for effdet key {key!r} (is it an effdet '
                                 'EfficientDet checkpoint?)')
        out[new] = value
    return out


def _coco80_channels(t: torch.Tensor) -> torch.Tensor:
    if t.shape[0] % 90:
        raise ConverterError(f'num_classes=80 needs a 90-class checkpoint; the class '
                             f'prediction has {t.shape[0]} outputs')
    num_anchors = t.shape[0] // 90
    index = torch.tensor([a * 90 + i - 1 for a in range(num_anchors) for i in COCO80_CATEGORY_IDS])
    return t[index].clone()


def _permute_box_channels(t: torch.Tensor) -> torch.Tensor:
    num_anchors = t.shape[0] // 4
    index = torch.tensor([a * 4 + c for a in range(num_anchors) for c in _BOX_ORDER])
    return t[index].clone()


def load_effdet_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Read an effdet checkpoint (plain state dict or one under ``state_dict[_ema]``/``model``).

    Loaded with ``weights_only=True`` and only mmengine's own globals allowed.

    Raises:
        CheckpointSafetyError: The file is not a plain-weights PyTorch checkpoint.
        ConverterError: It holds no state dict.
    """
    from ..fileio import safe_torch_load
    ckpt = safe_torch_load(path, map_location='cpu')
    for key in ('state_dict_ema', 'state_dict', 'model'):
        if isinstance(ckpt, dict) and key in ckpt and isinstance(ckpt[key], dict):
            ckpt = ckpt[key]
            break
    if not isinstance(ckpt, dict) or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise ConverterError(f'{path}: not an effdet state dict (expected a dict of tensors)')
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in ckpt.items()}


def convert_file(src: str, dst: str, num_classes: int = 90,
                 meta: Optional[dict] = None) -> int:
    """Convert the effdet checkpoint ``src`` and ``torch.save`` the result to ``dst``.

    Args:
        src (str): effdet checkpoint (``.pth``).
        dst (str): Output file: ``{'state_dict': ..., 'meta': ...}``, tensors only.
        num_classes (int): 90 or 80, as for :func:`convert`.
        meta (dict, optional): Extra ``meta`` entries (e.g. the zoo name and URL).

    Returns:
        int: The number of tensors written.
    """
    state = convert(load_effdet_state_dict(src), num_classes=num_classes)
    info = {'converted_from': src, 'converter': 'effdet2mmdet', **(meta or {})}
    torch.save({'state_dict': state, 'meta': info}, dst)
    return len(state)
