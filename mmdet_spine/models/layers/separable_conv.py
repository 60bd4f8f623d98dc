"""Depthwise-separable convolution as EfficientDet uses it (BiFPN nodes and heads).

Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object Detection", CVPR 2020,
https://arxiv.org/abs/1911.09070.
"""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

from .config_checks import (FLAG, ODD_POSITIVE_INT, POSITIVE_INT, check_act_cfg, check_fields,
                            check_norm_cfg)


class SeparableConvModule(nn.Module):
    """Depthwise k x k conv (no bias) -> pointwise 1x1 conv (bias) -> optional norm / act.

    Unlike mmcv's ``DepthwiseSeparableConvModule`` the two convs differ in bias: TF's
    ``SeparableConv2D(use_bias=True)`` has one bias, on the pointwise output, and keeps it even
    in front of a BN (effdet's ``redundant_bias``), which parameter counts and converted weights
    depend on.

    Args:
        in_channels (int): Input channels, >= 1.
        out_channels (int): Output channels, >= 1.
        kernel_size (int): Depthwise kernel, odd and >= 1 (padded ``kernel_size // 2``).
            Default: 3.
        stride (int): Depthwise stride, >= 1. Default: 1.
        pw_bias (bool): Bias on the pointwise conv. Default: True.
        conv_cfg (dict, optional): Conv layer config (e.g. ``dict(type='Conv2dTFSame')``).
        norm_cfg (dict, optional): Norm after the pointwise conv. Default: None.
        act_cfg (dict, optional): Activation after the norm. Default: None.

    Example:
        >>> m = SeparableConvModule(8, 16, norm_cfg=dict(type='BN'))
        >>> m(torch.rand(1, 8, 10, 10)).shape
        torch.Size([1, 16, 10, 10])
    """

    #: Valid range of each numeric argument.
    arg_rules = dict(in_channels=POSITIVE_INT, out_channels=POSITIVE_INT,
                     kernel_size=ODD_POSITIVE_INT, stride=POSITIVE_INT, pw_bias=FLAG)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, pw_bias: bool = True, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, act_cfg: Optional[dict] = None):
        super().__init__()
        name = type(self).__name__
        check_fields(name, self.arg_rules, dict(
            in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size,
            stride=stride, pw_bias=pw_bias))
        check_norm_cfg(norm_cfg, name)
        check_act_cfg(act_cfg, name)
        self.depthwise_conv = ConvModule(
            in_channels, in_channels, kernel_size, stride=stride, padding=kernel_size // 2,
            groups=in_channels, bias=False, conv_cfg=conv_cfg, norm_cfg=None, act_cfg=None)
        self.pointwise_conv = ConvModule(
            in_channels, out_channels, 1, bias=pw_bias, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
            act_cfg=act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))
