"""EfficientNet B0-B7 with TensorFlow 'SAME' padding, as the EfficientDet backbone.

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019,
https://arxiv.org/abs/1905.11946; used by Tan, Pang, Le, "EfficientDet: Scalable and Efficient
Object Detection", CVPR 2020, https://arxiv.org/abs/1911.09070.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.layers import InvertedResidual
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers import tf_conv_init
from ..layers.config_checks import check_act_cfg, check_norm_cfg

#: The B0 stages: (block repeats, depthwise kernel, first stride, expand ratio, out channels).
#: Every block has squeeze-excitation with 1/4 of the block's input channels.
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


def round_channels(channels: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor``, never below 90 % of it."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return rounded


def _size_after(size: Optional[Tuple[int, int]], stride: int) -> Optional[Tuple[int, int]]:
    return None if size is None else tuple(math.ceil(s / stride) for s in size)


@MODELS.register_module()
class TFEfficientNet(BaseModule):
    """EfficientNet B0-B7 feature extractor with TF 'SAME' padding and drop-connect.

    The EfficientDet backbone (Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object
    Detection", CVPR 2020, https://arxiv.org/abs/1911.09070), laid out like timm's
    ``tf_efficientnet_b*`` / google/automl (no classifier head conv): a 3x3 stride-2 stem, then
    seven stages of MBConv blocks (mmdet's ``InvertedResidual`` with squeeze-excitation), with
    width and depth scaled by :attr:`arch_settings`. mmdet's own ``EfficientNet`` always builds
    the 1280-channel head conv, so it cannot match EfficientDet's parameter count; hence this
    separate name.

    Args:
        arch (str): One of ``'b0'`` .. ``'b7'``. Default: 'b0'.
        out_indices (Sequence[int]): Stages (0-6) whose outputs are returned; (2, 4, 6) gives
            strides 8, 16 and 32. Default: (2, 4, 6).
        drop_path_rate (float): Drop-connect rate of the last block, scaled linearly from 0 over
            the blocks. Default: 0.2.
        tf_same_padding (bool): TF 'SAME' padding (needed for TF-trained weights); False uses
            PyTorch's symmetric ``k // 2``. Default: True.
        input_size (tuple[int, int] | int, optional): Fixed (H, W) input; the 'SAME' pads of
            strided convs are then computed once at build time. Default: None (per input).
        norm_cfg (dict): Norm config. Default: BN with TF's momentum 0.99 (0.01 here) and
            eps 1e-3.
        act_cfg (dict): Activation config. Default: ``dict(type='SiLU')`` (swish).
        norm_eval (bool): Keep norm layers in eval mode while training. Default: False.
        frozen_stages (int): Stages frozen (stem is stage -1 ... 0 freezes the stem and stage 0;
            -1 freezes nothing). Default: -1.
        with_cp (bool): Gradient checkpointing inside blocks. Default: False.
        init_cfg (dict | list[dict], optional): Initialisation config (e.g. ``Pretrained``).
            Default: None, TF's EfficientNet initialiser (normal, std sqrt(2 / fan_out) with
            the depthwise fan-out counted per group).

    Example:
        >>> net = TFEfficientNet('b0', input_size=128).eval()
        >>> [tuple(o.shape) for o in net(torch.rand(1, 3, 128, 128))]
        [(1, 40, 16, 16), (1, 112, 8, 8), (1, 320, 4, 4)]
    """

    #: arch -> (width multiplier, depth multiplier, native resolution).
    arch_settings = {
        'b0': (1.0, 1.0, 224),
        'b1': (1.0, 1.1, 240),
        'b2': (1.1, 1.2, 260),
        'b3': (1.2, 1.4, 300),
        'b4': (1.4, 1.8, 380),
        'b5': (1.6, 2.2, 456),
        'b6': (1.8, 2.6, 528),
        'b7': (2.0, 3.1, 600),
    }

    def __init__(self,
                 arch: str = 'b0',
                 out_indices: Sequence[int] = (2, 4, 6),
                 drop_path_rate: float = 0.2,
                 tf_same_padding: bool = True,
                 input_size: Optional[Union[int, Tuple[int, int]]] = None,
                 norm_cfg: dict = dict(type='BN', momentum=0.01, eps=1e-3),
                 act_cfg: dict = dict(type='SiLU'),
                 norm_eval: bool = False,
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg)
        check_norm_cfg(norm_cfg, 'TFEfficientNet')
        check_act_cfg(act_cfg, 'TFEfficientNet')
        if arch not in self.arch_settings:
            raise KeyError(f'arch={arch!r} is not an EfficientNet; valid choices: '
                           f"{', '.join(self.arch_settings)}")
        num_stages = len(B0_STAGES)
        for i in out_indices:
            if not 0 <= i < num_stages:
                raise ValueError(f'out_indices contains {i}; stages are 0..{num_stages - 1}')
        if not -1 <= frozen_stages < num_stages:
            raise ValueError(f'frozen_stages={frozen_stages} must be in -1..{num_stages - 1}')
        self.arch = arch
        self.out_indices = tuple(out_indices)
        self.norm_eval = norm_eval
        self.frozen_stages = frozen_stages
        width, depth, _ = self.arch_settings[arch]
        if isinstance(input_size, int):
            input_size = (input_size, input_size)

        def conv_cfg(size):
            return dict(type='Conv2dTFSame', input_size=size) if tf_same_padding else None

        stem_channels = round_channels(32 * width)
        self.stem = ConvModule(3, stem_channels, 3, stride=2, padding=1,
                               conv_cfg=conv_cfg(input_size), norm_cfg=norm_cfg,
                               act_cfg=act_cfg)
        size = _size_after(input_size, 2)

        repeats = [int(math.ceil(r * depth)) for r, *_ in B0_STAGES]
        total_blocks, block_idx = sum(repeats), 0
        in_channels = stem_channels
        self.out_channels = []
        self.stages = nn.ModuleList()
        for (_, kernel, stride, expand, out), num_blocks in zip(B0_STAGES, repeats):
            out_channels = round_channels(out * width)
            blocks = []
            for j in range(num_blocks):
                s = stride if j == 0 else 1
                mid_channels = in_channels * expand
                blocks.append(InvertedResidual(
                    in_channels, out_channels, mid_channels, kernel_size=kernel, stride=s,
                    se_cfg=dict(channels=mid_channels, ratio=4 * expand,
                                act_cfg=(act_cfg, dict(type='Sigmoid'))),
                    with_expand_conv=expand != 1, conv_cfg=conv_cfg(size), norm_cfg=norm_cfg,
                    act_cfg=act_cfg, drop_path_rate=drop_path_rate * block_idx / total_blocks,
                    with_cp=with_cp))
                size = _size_after(size, s)
                in_channels = out_channels
                block_idx += 1
            self.stages.append(nn.Sequential(*blocks))
            self.out_channels.append(out_channels)
        self.out_channels = [self.out_channels[i] for i in self.out_indices]
        self.out_strides = [STAGE_STRIDES[i] for i in self.out_indices]
        self._freeze_stages()

    def init_weights(self):
        super().init_weights()
        if self.init_cfg is None:
            tf_conv_init(self, 'efficientnet')

    def _freeze_stages(self):
        if self.frozen_stages < 0:
            return
        for m in [self.stem] + list(self.stages[:self.frozen_stages + 1]):
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

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

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
