"""Cross-scale resampling of a feature map to another pyramid level and width.

The cross-scale connection of SpineNet (Du et al., "SpineNet: Learning Scale-Permuted Backbone
for Recognition and Localization", CVPR 2020, https://arxiv.org/abs/1912.05027, Sec. 3.2).
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmdet_spine.errors import ConfigError

from .config_checks import NON_NEGATIVE_INT, POSITIVE_INT, check_fields
from .tf_padding import MaxPool2dTFSame, TFSamePad2d

#: Valid values of ``padding_mode``.
#: 'tf_tpu': tensorflow/tpu's TF1 SpineNet (symmetric conv padding, TF 'SAME' max-pools, and
#: one max-pool, 3x3 or 5x5, for a resampling of more than one level down).
PADDING_MODES = ('pytorch', 'tf_same', 'tf_tpu')


#: Valid range of the numeric arguments of both resampling modules.
_ARG_RULES = dict(in_channels=POSITIVE_INT, mid_channels=POSITIVE_INT, out_channels=POSITIVE_INT,
                  in_level=NON_NEGATIVE_INT, out_level=NON_NEGATIVE_INT)


def check_padding_mode(mode: str, field: str = 'padding_mode', owner: str = '') -> str:
    """Return ``mode`` if it is one of :data:`PADDING_MODES`, else raise a ``ConfigError``
    (prefixed with ``owner``, the module's name, when given)."""
    if not any(mode == m for m in PADDING_MODES):
        pre = f'{owner}: ' if owner else ''
        raise ConfigError(f'{pre}{field}={mode!r} is not a padding mode; valid choices: '
                          f"{', '.join(PADDING_MODES)}")
    return mode


def strided_max_pool(padding_mode: str = 'pytorch') -> nn.Module:
    """3x3 stride-2 max-pool padded like PyTorch (1 cell each side) or TF 'SAME'.

    Both pad with -inf (padded cells never win), so they differ only in where the odd cell
    goes: TF puts it at the end.
    """
    if check_padding_mode(padding_mode) in ('tf_same', 'tf_tpu'):
        return MaxPool2dTFSame(3, 2)
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


class CrossScaleResample(BaseModule):
    """Resample a feature map from ``in_level`` to ``out_level`` and ``out_channels``.

    ``conv_in`` (1x1 conv + norm + act to ``mid_channels``, SpineNet's alpha-scaled width),
    then for a coarser target a 3x3 stride-2 ``down_conv`` (conv + norm + act) followed by
    ``in_level - out_level - 1`` 3x3 stride-2 max-pools (``pools``), or for a finer target
    nearest-neighbour upsampling, and finally ``conv_out`` (1x1 conv + norm, no activation)
    to ``out_channels``.

    From Du et al., "SpineNet: Learning Scale-Permuted Backbone for Recognition and
    Localization", CVPR 2020 (https://arxiv.org/abs/1912.05027).

    Args:
        in_channels (int): Channels of the input, >= 1.
        mid_channels (int): Channels while resampling, >= 1 (SpineNet: ``int(alpha * C)``
            where C is the parent's block width, i.e. its channels / 4 for a bottleneck).
        out_channels (int): Channels of the output, >= 1.
        in_level (int): Pyramid level of the input (stride ``2**in_level``), >= 0.
        out_level (int): Pyramid level of the output, >= 0.
        conv_cfg (dict, optional): Conv layer config. Default: None.
        norm_cfg (dict): Norm layer config. Default: dict(type='BN').
        act_cfg (dict): Activation config. Default: dict(type='ReLU').
        padding_mode (str): 'pytorch' (symmetric padding) or 'tf_same' (TF 'SAME' padding
            of the stride-2 conv and pools, for weights trained in TF), or 'tf_tpu'
            (tensorflow/tpu's TF1 SpineNet: symmetric conv padding, TF 'SAME' pools, one
            3x3/2 pool for 2 levels down or one 5x5 pool of stride 2^(d-1) for d > 2 levels).
            Default: 'pytorch'.
        init_cfg (dict | list[dict], optional): Initialisation config. Default: None.

    Example:
        >>> m = CrossScaleResample(256, 32, 128, in_level=3, out_level=5)
        >>> m(torch.rand(1, 256, 16, 16)).shape
        torch.Size([1, 128, 4, 4])
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, in_level: int,
                 out_level: int, conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN'), act_cfg: Optional[Dict] = dict(type='ReLU'),
                 padding_mode: str = 'pytorch', init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        check_fields(name, _ARG_RULES, dict(
            in_channels=in_channels, mid_channels=mid_channels, out_channels=out_channels,
            in_level=in_level, out_level=out_level))
        check_padding_mode(padding_mode, owner=name)
        self.in_level, self.out_level = in_level, out_level
        self.padding_mode = padding_mode
        cm = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, bias=False)
        self.conv_in = ConvModule(in_channels, mid_channels, 1, act_cfg=act_cfg, **cm)
        self.down_pad = None
        self.down_conv = None
        self.pools = None
        if in_level < out_level:
            tf_same = padding_mode == 'tf_same'
            if tf_same:
                self.down_pad = TFSamePad2d(3, 2)
            self.down_conv = ConvModule(mid_channels, mid_channels, 3, stride=2,
                                        padding=0 if tf_same else 1, act_cfg=act_cfg, **cm)
            num_pools = out_level - in_level - 1
            if num_pools and padding_mode == 'tf_tpu':  # one pool: 3x3 for 2 levels, else 5x5
                self.pools = nn.Sequential(
                    MaxPool2dTFSame(3 if num_pools == 1 else 5, 2**num_pools))
            elif num_pools:
                self.pools = nn.Sequential(
                    *[strided_max_pool(padding_mode) for _ in range(num_pools)])
        self.conv_out = ConvModule(mid_channels, out_channels, 1, act_cfg=None, **cm)

    def forward(self, x: torch.Tensor, out_size: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Resample ``x``; ``out_size`` (H, W) fixes the upsampled size for inputs whose
        sides are not multiples of the level ratio (default: exact ``2**k`` upsampling)."""
        x = self.conv_in(x)
        if self.down_conv is not None:
            if self.down_pad is not None:
                x = self.down_pad(x)
            x = self.down_conv(x)
            if self.pools is not None:
                x = self.pools(x)
        elif self.in_level > self.out_level:
            if out_size is not None:
                x = F.interpolate(x, size=tuple(out_size), mode='nearest')
            else:
                x = F.interpolate(x, scale_factor=2 ** (self.in_level - self.out_level),
                                  mode='nearest')
        return self.conv_out(x)

    def extra_repr(self) -> str:
        return f'in_level={self.in_level}, out_level={self.out_level}'


class DepthwiseCrossScaleResample(BaseModule):
    """Resample with depthwise convs: SpineNet-Mobile's cross-scale connection.

    For a coarser target, one 3x3 stride-2 depthwise conv + norm + act per level (``down``);
    for a finer target, nearest-neighbour upsampling; then ``conv_out`` (1x1 conv + norm, no
    activation) to ``out_channels``.

    From Du et al., "Efficient Scale-Permuted Backbone with Learned Resource Distribution",
    ECCV 2020 (https://arxiv.org/abs/2010.11426), building on SpineNet (Du et al., CVPR 2020,
    https://arxiv.org/abs/1912.05027).

    Args:
        in_channels (int): Channels of the input, >= 1.
        out_channels (int): Channels of the output, >= 1.
        in_level (int): Pyramid level of the input, >= 0.
        out_level (int): Pyramid level of the output, >= 0.
        conv_cfg (dict, optional): Conv layer config. Default: None.
        norm_cfg (dict): Norm layer config. Default: dict(type='BN').
        act_cfg (dict): Activation config. Default: dict(type='ReLU').
        padding_mode (str): 'pytorch' or 'tf_same' (see :class:`CrossScaleResample`).
        init_cfg (dict | list[dict], optional): Initialisation config. Default: None.

    Example:
        >>> m = DepthwiseCrossScaleResample(24, 40, in_level=2, out_level=3)
        >>> m(torch.rand(1, 24, 16, 16)).shape
        torch.Size([1, 40, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, in_level: int, out_level: int,
                 conv_cfg: Optional[Dict] = None, norm_cfg: Dict = dict(type='BN'),
                 act_cfg: Optional[Dict] = dict(type='ReLU'), padding_mode: str = 'pytorch',
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        check_fields(name, _ARG_RULES, dict(in_channels=in_channels, out_channels=out_channels,
                                            in_level=in_level, out_level=out_level))
        check_padding_mode(padding_mode, owner=name)
        self.in_level, self.out_level = in_level, out_level
        self.down = None
        if in_level < out_level:
            # TF 'SAME' through the conv type keeps the state-dict keys of both modes equal.
            down_cfg = conv_cfg
            if padding_mode == 'tf_same':
                if conv_cfg is not None:
                    raise ConfigError(f"{name}: padding_mode='tf_same' pads through the conv "
                                      f'type; it cannot be combined with conv_cfg={conv_cfg}')
                down_cfg = dict(type='Conv2dTFSame')
            self.down = nn.Sequential(*[
                ConvModule(in_channels, in_channels, 3, stride=2, padding=1,
                           groups=in_channels, bias=False, conv_cfg=down_cfg,
                           norm_cfg=norm_cfg, act_cfg=act_cfg)
                for _ in range(out_level - in_level)])
        self.conv_out = ConvModule(in_channels, out_channels, 1, bias=False, conv_cfg=conv_cfg,
                                   norm_cfg=norm_cfg, act_cfg=None)

    def forward(self, x: torch.Tensor, out_size: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Resample ``x``; ``out_size`` (H, W) fixes the upsampled size (see
        :meth:`CrossScaleResample.forward`)."""
        if self.down is not None:
            x = self.down(x)
        elif self.in_level > self.out_level:
            if out_size is not None:
                x = F.interpolate(x, size=tuple(out_size), mode='nearest')
            else:
                x = F.interpolate(x, scale_factor=2 ** (self.in_level - self.out_level),
                                  mode='nearest')
        return self.conv_out(x)

    def extra_repr(self) -> str:
        return f'in_level={self.in_level}, out_level={self.out_level}'
