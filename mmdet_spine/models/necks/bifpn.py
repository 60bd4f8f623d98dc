"""BiFPN: the weighted bi-directional feature pyramid of EfficientDet.

Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object Detection", CVPR 2020,
https://arxiv.org/abs/1911.09070 (Sec. 3, Fig. 2(d) and Eq. 3).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_activation_layer
from mmdet.registry import MODELS
from mmengine.model import BaseModule

from mmdet_spine.errors import ConfigError

from ..layers import FeatureFusion, MaxPool2dTFSame, SeparableConvModule, check_fusion_method
from ..layers.config_checks import (FLAG, NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, Each,
                                    OrNone, check_act_cfg, check_fields, check_norm_cfg)

Size = Tuple[int, int]


def bifpn_topology(num_levels: int) -> List[Tuple[int, Tuple[int, ...]]]:
    """The nodes of one BiFPN stage as ``(level, input node ids)``, in evaluation order.

    Node ids ``0 .. num_levels - 1`` are the stage's inputs (level 0 is the finest); every new
    node gets the next id. The top-down pass fuses each level with the level above
    (P6' = f(P6, P7), ..., P3'' = f(P3, P4')); the bottom-up pass fuses every node of a level
    with the level below (P4'' = f(P4, P4', P3''), ..., P7'' = f(P7, P6'')). The stage outputs
    are the last node of each level.
    """
    last = {i: [i] for i in range(num_levels)}
    nodes, next_id = [], num_levels
    for level in range(num_levels - 2, -1, -1):
        nodes.append((level, (last[level][-1], last[level + 1][-1])))
        last[level].append(next_id)
        next_id += 1
    for level in range(1, num_levels):
        nodes.append((level, tuple(last[level]) + (last[level - 1][-1], )))
        last[level].append(next_id)
        next_id += 1
    return nodes


def level_sizes(input_size: Size, min_level: int, num_levels: int) -> List[Size]:
    """(H, W) of ``num_levels`` pyramid levels from ``min_level`` up: each level is the one
    below halved and rounded up, as TF 'SAME' strided convs / pools (and PyTorch's ``k // 2``
    padding) give them."""
    return [tuple(-(-s // 2**(min_level + i)) for s in input_size) for i in range(num_levels)]


def _valid_sizes_near(size: int, multiple: int) -> str:
    below = (size // multiple) * multiple
    above = below + multiple
    return ', '.join(str(s) for s in (below, above) if s > 0)


class LevelResample(nn.Module):
    """Bring a feature map to a node's level: optional 1x1 conv + norm, then resize.

    Args:
        in_channels (int): Channels of the input map.
        out_channels (int): Channels of the node; a 1x1 conv (with bias) + norm is added when
            they differ.
        level_shift (int): Target level minus input level: +1 max-pools 3x3 stride 2, -1
            upsamples (nearest, to the target's size), 0 keeps the size.
        norm_cfg (dict, optional): Norm after the 1x1 conv.
        tf_same_padding (bool): TF 'SAME' max-pool padding (pads with -inf at bottom/right).
        input_size (tuple, optional): Fixed (H, W) of the input, for static pool padding.
    """

    def __init__(self, in_channels: int, out_channels: int, level_shift: int,
                 norm_cfg: Optional[dict], tf_same_padding: bool = True,
                 input_size: Optional[Size] = None):
        super().__init__()
        if level_shift not in (-1, 0, 1):
            raise ConfigError(f'LevelResample: level_shift={level_shift!r}; valid choices: '
                              '-1, 0, 1')
        self.level_shift = level_shift
        self.conv = None
        if in_channels != out_channels:
            self.conv = ConvModule(in_channels, out_channels, 1, bias=True, norm_cfg=norm_cfg,
                                   act_cfg=None)
        self.pool = None
        if level_shift == 1:
            self.pool = (MaxPool2dTFSame(3, 2, input_size=input_size) if tf_same_padding
                         else nn.MaxPool2d(3, 2, padding=1))

    def forward(self, x: torch.Tensor, target_size: Optional[Size] = None) -> torch.Tensor:
        if self.conv is not None:
            x = self.conv(x)
        if self.pool is not None:
            x = self.pool(x)
        elif self.level_shift == -1:
            x = F.interpolate(x, size=target_size, mode='nearest')
        return x


class BiFPNNode(nn.Module):
    """One fusion node: resample each input, fuse, act, separable 3x3 conv, norm.

    Each node owns the resampling of its inputs (so a backbone level used by two nodes gets two
    1x1 projections, as in the official model).

    Args:
        level (int): Output level (0 = finest).
        in_specs (Sequence[tuple[int, int]]): (channels, level) of each input.
        out_channels (int): Node width.
        fusion (str): 'sum', 'weighted' (fast normalized) or 'softmax'.
        norm_cfg (dict): Norm config.
        act_cfg (dict): Activation applied after fusion.
        conv_cfg (dict, optional): Conv layer config of the separable conv.
        tf_same_padding (bool): TF 'SAME' max-pools.
        sizes (Sequence[tuple], optional): Fixed (H, W) per level.
        eps (float): Fast-fusion stabiliser. Default: 1e-4.
    """

    def __init__(self, level: int, in_specs: Sequence[Tuple[int, int]], out_channels: int,
                 fusion: str, norm_cfg: dict, act_cfg: dict, conv_cfg: Optional[dict] = None,
                 tf_same_padding: bool = True, sizes: Optional[Sequence[Size]] = None,
                 eps: float = 1e-4):
        super().__init__()
        self.level = level
        self.resample = nn.ModuleList([
            LevelResample(ch, out_channels, level - in_level, norm_cfg, tf_same_padding,
                          None if sizes is None else sizes[in_level])
            for ch, in_level in in_specs
        ])
        self.fusion = FeatureFusion(len(in_specs), fusion, eps=eps)
        self.act = build_activation_layer(act_cfg)
        self.conv = SeparableConvModule(out_channels, out_channels, 3, pw_bias=True,
                                        conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=None)

    def forward(self, inputs: Sequence[torch.Tensor], target_size: Size) -> torch.Tensor:
        x = self.fusion([r(t, target_size) for r, t in zip(self.resample, inputs)])
        return self.conv(self.act(x))


class BiFPNStage(nn.Module):
    """One BiFPN layer: the nodes of :func:`bifpn_topology` over ``len(in_channels)`` levels.

    Args:
        in_channels (Sequence[int]): Channels of each input level.
        out_channels (int): Width of every node.
        **node_kwargs: Passed to :class:`BiFPNNode`.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int, **node_kwargs):
        super().__init__()
        self.num_levels = len(in_channels)
        specs = [(ch, level) for level, ch in enumerate(in_channels)]
        self.topology = bifpn_topology(self.num_levels)
        self.nodes = nn.ModuleList()
        for level, input_ids in self.topology:
            self.nodes.append(BiFPNNode(level, [specs[i] for i in input_ids], out_channels,
                                        **node_kwargs))
            specs.append((out_channels, level))

    def forward(self, feats: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        sizes = [tuple(f.shape[-2:]) for f in feats]
        nodes = list(feats)
        last = list(range(self.num_levels))
        for node, (level, input_ids) in zip(self.nodes, self.topology):
            nodes.append(node([nodes[i] for i in input_ids], sizes[level]))
            last[level] = len(nodes) - 1
        return [nodes[i] for i in last]


@MODELS.register_module()
class BiFPN(BaseModule):
    """Bi-directional feature pyramid with fast normalized fusion, stacked ``num_stages`` times.

    Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object Detection", CVPR 2020,
    https://arxiv.org/abs/1911.09070. Takes backbone levels ``start_level ..`` and adds coarser
    ones up to ``num_outs`` levels: the first extra level is a 1x1 conv + norm of the last input
    (when its width differs) followed by a 3x3 stride-2 max-pool, the next ones a max-pool only.
    Each stage runs a top-down then a bottom-up pass (:func:`bifpn_topology`); every node fuses
    its inputs (:class:`~mmdet_spine.models.layers.FeatureFusion`), applies the activation and a
    separable 3x3 conv followed by norm. Works after any backbone.

    Args:
        in_channels (Sequence[int]): Channels of each backbone output.
        out_channels (int): BiFPN width.
        num_stages (int): Number of stacked BiFPN layers.
        start_level (int): First backbone output used. Default: 0.
        num_outs (int): Output levels (used inputs + extra levels). Default: 5.
        min_level (int): Pyramid level of the first used input (stride ``2**min_level``); only
            checks ``input_size``. Default: 3.
        fusion (str): 'weighted' (fast normalized fusion; alias 'fast_attn'), 'softmax' or
            'sum'. Default: 'weighted'.
        input_size (int | tuple[int, int], optional): Fixed network input (H, W), positive
            ints, each a multiple of ``size_divisor``; pads are then computed at build time.
            Default: None.
        size_divisor (int, optional): What ``input_size`` must be a multiple of, >= 1.
            Default: None, ``2**max_level`` (every level exactly halves the one below, so
            anchors at strides ``2**level`` fit). A smaller one (EfficientDet-Lite0 at 320 px:
            64) rounds the top levels up as TF 'SAME' does (320 px: P6 5x5, P7 3x3).
        tf_same_padding (bool): TF 'SAME' max-pool padding, needed for TF weights. Default: True.
        conv_cfg (dict, optional): Conv layer config of the separable convs.
        norm_cfg (dict): Norm config. Default: BN, momentum 0.01, eps 1e-3 (TF's).
        act_cfg (dict): Activation after fusion. Default: ``dict(type='SiLU')``.
        eps (float): Fast-fusion stabiliser, > 0. Default: 1e-4.
        init_cfg (dict | list[dict], optional): Initialisation config. Default: TF's
            Glorot-uniform for every conv (``TFConv``, ``mode='glorot_uniform'``, the
            depthwise fan-out counted per group, as automl / effdet), biases 0.

    Example:
        >>> neck = BiFPN([40, 112, 320], 64, num_stages=3, input_size=256).eval()
        >>> feats = [torch.rand(1, c, 256 // s, 256 // s) for c, s in [(40, 8), (112, 16),
        ...                                                          (320, 32)]]
        >>> [tuple(o.shape[-2:]) for o in neck(feats)]
        [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]
    """

    #: Valid range of each numeric argument.
    arg_rules = dict(
        in_channels=Each(POSITIVE_INT), out_channels=POSITIVE_INT, num_stages=POSITIVE_INT,
        start_level=NON_NEGATIVE_INT, num_outs=POSITIVE_INT, min_level=NON_NEGATIVE_INT,
        input_size=OrNone(Each(POSITIVE_INT, length=2, scalar_ok=True)),
        size_divisor=OrNone(POSITIVE_INT), tf_same_padding=FLAG, eps=POSITIVE)

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_stages: int,
                 start_level: int = 0,
                 num_outs: int = 5,
                 min_level: int = 3,
                 fusion: str = 'weighted',
                 input_size: Optional[Union[int, Size]] = None,
                 size_divisor: Optional[int] = None,
                 tf_same_padding: bool = True,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', momentum=0.01, eps=1e-3),
                 act_cfg: dict = dict(type='SiLU'),
                 eps: float = 1e-4,
                 init_cfg=dict(type='TFConv', mode='glorot_uniform', layer='Conv2d')):
        super().__init__(init_cfg)
        name = type(self).__name__
        check_fields(name, self.arg_rules, dict(
            in_channels=in_channels, out_channels=out_channels, num_stages=num_stages,
            start_level=start_level, num_outs=num_outs, min_level=min_level,
            input_size=input_size, size_divisor=size_divisor, tf_same_padding=tf_same_padding,
            eps=eps))
        check_norm_cfg(norm_cfg, name)
        check_act_cfg(act_cfg, name)
        fusion = check_fusion_method(fusion, 'fusion', owner=name)
        in_channels = list(in_channels)
        if not 0 <= start_level < len(in_channels):
            raise ConfigError(f'{name}: start_level={start_level} is out of range for '
                              f'{len(in_channels)} in_channels {in_channels}; valid: '
                              f'0..{len(in_channels) - 1}')
        num_ins = len(in_channels) - start_level
        if num_outs < max(num_ins, 2):
            raise ConfigError(f'{name}: num_outs={num_outs} must be >= 2 and cover the {num_ins} '
                              f'used inputs (in_channels[{start_level}:] = '
                              f'{in_channels[start_level:]})')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.start_level = start_level
        self.num_outs = num_outs
        self.num_stages = num_stages
        self.fusion = fusion

        sizes = None
        if input_size is not None:
            if isinstance(input_size, int):
                input_size = (input_size, input_size)
            input_size = tuple(input_size)
            max_level = min_level + num_outs - 1
            if size_divisor is None:
                multiple, what = 2**max_level, (f'2**{max_level} = {2**max_level} (levels '
                                                f'P{min_level}-P{max_level})')
            else:
                multiple, what = size_divisor, f'size_divisor={size_divisor}'
            for side, s in zip(('height', 'width'), input_size):
                if s % multiple:
                    raise ConfigError(
                        f'{name}: input_size {side} {s} is not a multiple of {what}; nearest '
                        f'valid sizes: {_valid_sizes_near(s, multiple)}')
            sizes = level_sizes(input_size, min_level, num_outs)
        self.input_size = input_size
        self.size_divisor = size_divisor

        self.extra_levels = nn.ModuleList()
        channels = in_channels[-1]
        for i in range(num_ins, num_outs):
            self.extra_levels.append(
                LevelResample(channels, out_channels, 1, norm_cfg, tf_same_padding,
                              None if sizes is None else sizes[i - 1]))
            channels = out_channels

        level_channels = in_channels[start_level:] + [out_channels] * (num_outs - num_ins)
        self.stages = nn.ModuleList()
        for _ in range(num_stages):
            self.stages.append(BiFPNStage(
                level_channels, out_channels, fusion=fusion, norm_cfg=norm_cfg,
                act_cfg=act_cfg, conv_cfg=conv_cfg, tf_same_padding=tf_same_padding,
                sizes=sizes, eps=eps))
            level_channels = [out_channels] * num_outs

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'BiFPN got {len(inputs)} inputs but in_channels has '
                             f'{len(self.in_channels)} entries {self.in_channels}')
        got = [int(x.shape[1]) for x in inputs]
        if got != self.in_channels:
            raise ValueError(f'BiFPN in_channels={self.in_channels} but the backbone gives '
                             f'channels {got}')
        feats = list(inputs[self.start_level:])
        for extra in self.extra_levels:
            feats.append(extra(feats[-1]))
        for stage in self.stages:
            feats = stage(feats)
        return tuple(feats)
