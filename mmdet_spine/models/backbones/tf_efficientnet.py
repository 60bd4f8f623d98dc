"""EfficientNet B0-B7 and EfficientNet-Lite0-4 with TensorFlow 'SAME' padding, as the
EfficientDet backbone.

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019,
https://arxiv.org/abs/1905.11946; used by Tan, Pang, Le, "EfficientDet: Scalable and Efficient
Object Detection", CVPR 2020, https://arxiv.org/abs/1911.09070. The Lite variants are
tensorflow/tpu's ``efficientnet/lite`` (no squeeze-excitation, ReLU6, fixed stem; the backbone
of google/automl's EfficientDet-Lite).
"""
import math
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.layers import InvertedResidual
from mmdet.registry import MODELS
from mmengine.model import BaseModule

from mmdet_spine.errors import ConfigError

from ..layers.config_checks import (FLAG, POSITIVE_INT, RATE, Bound, Each, OrNone,
                                    check_act_cfg, check_choice, check_fields, check_norm_cfg)
from ..utils.freezing import FreezeMixin

#: The B0 stages: (block repeats, depthwise kernel, first stride, expand ratio, out channels).
#: Every block of B0-B7 has squeeze-excitation with 1/4 of the block's input channels.
B0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
#: Output stride after each stage of :data:`B0_STAGES` (the stem has stride 2).
STAGE_STRIDES = (2, 4, 8, 16, 16, 32, 32)
#: Stem width of B0 (scaled with the width multiplier, except in the Lite models).
STEM_CHANNELS = 32


class EfficientNetArch(NamedTuple):
    """One row of :attr:`TFEfficientNet.arch_settings`.

    ``lite`` selects EfficientNet-Lite (tensorflow/tpu ``efficientnet_lite_builder``; timm's
    ``_gen_efficientnet_lite``): no squeeze-excitation, ReLU6, a 32-channel stem at every
    width, and the first and last stages keep their single block at every depth.
    """
    width: float
    depth: float
    resolution: int
    lite: bool = False


def round_channels(channels: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor``, never below 90 % of it."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return rounded


def stage_repeats(arch: EfficientNetArch) -> List[int]:
    """Blocks per stage of ``arch``: ``ceil(repeats * depth)``; Lite keeps the first and last
    stages at their B0 depth."""
    last = len(B0_STAGES) - 1
    return [r if arch.lite and i in (0, last) else int(math.ceil(r * arch.depth))
            for i, (r, *_) in enumerate(B0_STAGES)]


def stage_channels(arch: EfficientNetArch) -> List[int]:
    """Output channels of every stage of ``arch``."""
    return [round_channels(out * arch.width) for *_, out in B0_STAGES]


def _check_out_indices(owner: str, out_indices) -> None:
    last = len(B0_STAGES) - 1
    if not isinstance(out_indices, (list, tuple)) or not out_indices:
        raise ConfigError(f'{owner}: out_indices={out_indices!r} must name at least one stage '
                          f'(0..{last})')
    for i in out_indices:
        if not Bound(0, last, integer=True).contains(i):
            raise ConfigError(f'{owner}: out_indices contains {i!r}; stages are 0..{last}')


def _size_after(size: Optional[Tuple[int, int]], stride: int) -> Optional[Tuple[int, int]]:
    return None if size is None else tuple(math.ceil(s / stride) for s in size)


@MODELS.register_module()
class TFEfficientNet(FreezeMixin, BaseModule):
    """EfficientNet B0-B7 / EfficientNet-Lite0-4 feature extractor with TF 'SAME' padding.

    The EfficientDet backbone (Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object
    Detection", CVPR 2020, https://arxiv.org/abs/1911.09070), laid out like timm's
    ``tf_efficientnet_b*`` / ``tf_efficientnet_lite*`` and google/automl: a 3x3 stride-2 stem,
    then seven stages of MBConv blocks (mmdet's ``InvertedResidual``; with squeeze-excitation
    in B0-B7, without in Lite), width and depth scaled by :attr:`arch_settings`, drop-connect
    ``rate * block / num_blocks``.

    Why not mmdet 3.3's ``EfficientNet``: not for parameters (it skips its unused
    1280-channel head conv, and its blocks and squeeze-excitation widths equal TF's), but
    because it has no EfficientNet-Lite (no SE-free ReLU6 family with a fixed stem); it takes
    one ``conv_cfg`` for every layer, so 'SAME' pads cannot be fixed per layer at build time
    (its ``Conv2dAdaptivePadding`` pads every conv, stride 1 included, on each call, where
    here only strided convs pad and their pads come from ``input_size``); its drop-connect
    rates run ``linspace(0, rate)`` over the blocks (the last block drops with ``rate``)
    instead of automl's ``rate * i / num_blocks``; and it merges the 80/112- and
    192/320-channel stages into single layers, so stage indices (``out_indices``,
    ``frozen_stages``, which counts the stem as stage 1 there) and parameter names differ
    from timm / effdet, whose checkpoints the converter maps one to one.

    Args:
        arch (str): One of :attr:`arch_settings`: ``'b0'`` .. ``'b7'``, ``'lite0'`` ..
            ``'lite4'``. Default: 'b0'.
        out_indices (Sequence[int]): Stages (0-6) whose outputs are returned; (2, 4, 6) gives
            strides 8, 16 and 32. Default: (2, 4, 6).
        drop_path_rate (float): Drop-connect rate in [0, 1): block ``i`` of ``n`` drops with
            ``drop_path_rate * i / n``. Default: 0.2.
        tf_same_padding (bool): TF 'SAME' padding (needed for TF-trained weights); False uses
            PyTorch's symmetric ``k // 2``. Default: True.
        input_size (tuple[int, int] | int, optional): Fixed (H, W) input (positive ints); the
            'SAME' pads of strided convs are then computed once at build time. Default: None
            (per input).
        norm_cfg (dict): Norm config. Default: BN with TF's momentum 0.99 (0.01 here) and
            eps 1e-3.
        act_cfg (dict, optional): Activation config. Default: None, the arch's own:
            ``dict(type='SiLU')`` (swish) for B0-B7, ``dict(type='ReLU6')`` for Lite.
        norm_eval (bool): Keep norm layers in eval mode while training. Default: False.
        frozen_stages (int): In -1..7, mmdet's convention: -1 freezes nothing, 0 the stem,
            ``n >= 1`` the stem and the first ``n`` MBConv stages (``stages[:n]``). Frozen
            parts have ``requires_grad=False`` and stay in eval mode. Default: -1.
        with_cp (bool): Gradient checkpointing inside blocks. Default: False.
        init_cfg (dict | list[dict], optional): Initialisation config. Default: TF's
            EfficientNet initialiser for every conv (``TFConv``, ``mode='efficientnet'``:
            normal, std ``sqrt(2 / fan_out)`` with the depthwise fan-out counted per group);
            e.g. ``dict(type='Pretrained', checkpoint=...)`` replaces it.

    Example:
        >>> net = TFEfficientNet('b0', input_size=128).eval()
        >>> [tuple(o.shape) for o in net(torch.rand(1, 3, 128, 128))]
        [(1, 40, 16, 16), (1, 112, 8, 8), (1, 320, 4, 4)]
    """

    #: arch -> (width multiplier, depth multiplier, native resolution, lite).
    arch_settings = {
        'b0': EfficientNetArch(1.0, 1.0, 224),
        'b1': EfficientNetArch(1.0, 1.1, 240),
        'b2': EfficientNetArch(1.1, 1.2, 260),
        'b3': EfficientNetArch(1.2, 1.4, 300),
        'b4': EfficientNetArch(1.4, 1.8, 380),
        'b5': EfficientNetArch(1.6, 2.2, 456),
        'b6': EfficientNetArch(1.8, 2.6, 528),
        'b7': EfficientNetArch(2.0, 3.1, 600),
        'lite0': EfficientNetArch(1.0, 1.0, 224, lite=True),
        'lite1': EfficientNetArch(1.0, 1.1, 240, lite=True),
        'lite2': EfficientNetArch(1.1, 1.2, 260, lite=True),
        'lite3': EfficientNetArch(1.2, 1.4, 280, lite=True),
        'lite4': EfficientNetArch(1.4, 1.8, 300, lite=True),
    }
    #: Valid range of each numeric argument.
    arg_rules = dict(
        drop_path_rate=RATE, tf_same_padding=FLAG,
        input_size=OrNone(Each(POSITIVE_INT, length=2, scalar_ok=True)),
        norm_eval=FLAG, frozen_stages=Bound(-1, len(B0_STAGES), integer=True),
        with_cp=FLAG)

    def __init__(self,
                 arch: str = 'b0',
                 out_indices: Sequence[int] = (2, 4, 6),
                 drop_path_rate: float = 0.2,
                 tf_same_padding: bool = True,
                 input_size: Optional[Union[int, Tuple[int, int]]] = None,
                 norm_cfg: dict = dict(type='BN', momentum=0.01, eps=1e-3),
                 act_cfg: Optional[dict] = None,
                 norm_eval: bool = False,
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 init_cfg=dict(type='TFConv', mode='efficientnet', layer='Conv2d')):
        super().__init__(init_cfg)
        name = type(self).__name__
        check_choice(name, 'arch', arch, tuple(self.arch_settings), 'an EfficientNet')
        _check_out_indices(name, out_indices)
        check_fields(name, self.arg_rules, dict(
            drop_path_rate=drop_path_rate,
            tf_same_padding=tf_same_padding, input_size=input_size, norm_eval=norm_eval,
            frozen_stages=frozen_stages, with_cp=with_cp))
        check_norm_cfg(norm_cfg, name)
        check_act_cfg(act_cfg, name)
        setting = self.arch_settings[arch]
        if act_cfg is None:
            act_cfg = dict(type='ReLU6') if setting.lite else dict(type='SiLU')
        self.arch = arch
        self.out_indices = tuple(out_indices)
        self.norm_eval = norm_eval
        self.frozen_stages = frozen_stages
        if isinstance(input_size, int):
            input_size = (input_size, input_size)

        def conv_cfg(size):
            return dict(type='Conv2dTFSame', input_size=size) if tf_same_padding else None

        stem_channels = (STEM_CHANNELS if setting.lite else
                         round_channels(STEM_CHANNELS * setting.width))
        self.stem = ConvModule(3, stem_channels, 3, stride=2, padding=1,
                               conv_cfg=conv_cfg(input_size), norm_cfg=norm_cfg,
                               act_cfg=act_cfg)
        size = _size_after(input_size, 2)

        repeats = stage_repeats(setting)
        total_blocks, block_idx = sum(repeats), 0
        in_channels = stem_channels
        self.stages = nn.ModuleList()
        for (_, kernel, stride, expand, _), out_channels, num_blocks in zip(
                B0_STAGES, stage_channels(setting), repeats):
            blocks = []
            for j in range(num_blocks):
                s = stride if j == 0 else 1
                mid_channels = in_channels * expand
                se_cfg = None if setting.lite else dict(
                    channels=mid_channels, ratio=4 * expand,
                    act_cfg=(act_cfg, dict(type='Sigmoid')))
                blocks.append(InvertedResidual(
                    in_channels, out_channels, mid_channels, kernel_size=kernel, stride=s,
                    se_cfg=se_cfg, with_expand_conv=expand != 1, conv_cfg=conv_cfg(size),
                    norm_cfg=norm_cfg, act_cfg=act_cfg,
                    drop_path_rate=drop_path_rate * block_idx / total_blocks,
                    with_cp=with_cp))
                size = _size_after(size, s)
                in_channels = out_channels
                block_idx += 1
            self.stages.append(nn.Sequential(*blocks))
        self.out_channels = [stage_channels(setting)[i] for i in self.out_indices]
        self.out_strides = [STAGE_STRIDES[i] for i in self.out_indices]
        self._freeze_stages()

    def frozen_modules(self) -> List[nn.Module]:
        """What ``frozen_stages`` freezes: the stem and ``stages[:frozen_stages]``."""
        if self.frozen_stages < 0:
            return []
        return [self.stem] + list(self.stages[:self.frozen_stages])

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
            if i >= max(self.out_indices):
                break
        return tuple(outs)
