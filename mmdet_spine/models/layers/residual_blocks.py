"""Residual blocks shared by SpineNet and SpineResNet.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016
(https://arxiv.org/abs/1512.03385): the basic ("residual") block of two 3x3 convs and the
bottleneck block (1x1 - 3x3 - 1x1, expansion 4). Options from later work: stochastic depth
(Huang et al., ECCV 2016, https://arxiv.org/abs/1603.09382), grouped 3x3 convs (ResNeXt, Xie
et al., CVPR 2017), deformable convs (DCN / DCNv2, Dai et al. 2017, Zhu et al. 2019).

Sub-module names follow mmdet's ``BasicBlock`` / ``Bottleneck`` (``conv1``, ``bn1``, ``conv2``,
``bn2``, ``conv3``, ``bn3``, ``downsample.0`` / ``downsample.1``; norms are named by
``build_norm_layer`` so GN gives ``gn1``...), so that state dicts of mmdet ResNets load
key-for-key into networks built from these blocks.
"""
import copy
import math
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_activation_layer, build_conv_layer, build_norm_layer
from mmcv.cnn.bricks.drop import DropPath
from mmengine.model import BaseModule, constant_init

from mmdet_spine.errors import ConfigError

from .config_checks import FLAG, POSITIVE_INT, RATE, OrNone, check_choice, check_fields

#: Activations that take ``inplace``; others are built as given.
_INPLACE_ACTS = ('ReLU', 'ReLU6', 'LeakyReLU', 'ELU', 'SiLU')


def build_act(act_cfg: Optional[Dict], inplace: bool = True) -> nn.Module:
    """Build an activation from ``act_cfg`` (``None`` gives identity).

    ReLU-like activations are made in-place by default, as mmcv's ``ConvModule`` does.
    """
    if act_cfg is None:
        return nn.Identity()
    cfg = copy.deepcopy(act_cfg)
    if cfg.get('type') in _INPLACE_ACTS:
        cfg.setdefault('inplace', inplace)
    return build_activation_layer(cfg)


def _build_dcn_or_conv(conv_cfg, dcn, *args, **kwargs) -> nn.Module:
    if dcn is None:
        return build_conv_layer(conv_cfg, *args, **kwargs)
    import mmcv.ops  # noqa: F401  (registers DCN / DCNv2 as conv layers)
    dcn = copy.deepcopy(dcn)
    dcn.pop('fallback_on_stride', None)
    return build_conv_layer(dcn, *args, **kwargs)


class _ResBlockBase(BaseModule):
    """Shared shortcut / drop-path / zero-init logic of the two residual blocks."""

    expansion = 1
    #: Valid range of each numeric argument (checked at build time).
    arg_rules = dict(in_channels=POSITIVE_INT, planes=POSITIVE_INT, stride=POSITIVE_INT,
                     dilation=POSITIVE_INT, groups=POSITIVE_INT, base_width=POSITIVE_INT,
                     drop_path_rate=RATE, use_projection=OrNone(FLAG),
                     zero_init_residual=FLAG, with_cp=FLAG, stride_in_1x1=FLAG)

    @classmethod
    def _check_args(cls, **values) -> None:
        check_fields(cls.__name__, cls.arg_rules, values)

    def __init__(self, in_channels: int, planes: int, stride: int, use_projection: Optional[bool],
                 drop_path_rate: float, zero_init_residual: bool, with_cp: bool,
                 conv_cfg: Optional[Dict], norm_cfg: Dict, act_cfg: Optional[Dict],
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self._check_args(in_channels=in_channels, planes=planes, stride=stride,
                         use_projection=use_projection, drop_path_rate=drop_path_rate,
                         zero_init_residual=zero_init_residual, with_cp=with_cp)
        self.in_channels = in_channels
        self.planes = planes
        self.out_channels = planes * self.expansion
        self.stride = stride
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.with_cp = with_cp
        self.zero_init_residual = zero_init_residual
        if use_projection is None:
            use_projection = stride != 1 or in_channels != self.out_channels
        elif not use_projection and (stride != 1 or in_channels != self.out_channels):
            raise ConfigError(
                f'{type(self).__name__}: use_projection=False needs stride 1 and in_channels '
                f'== out_channels, got stride={stride}, in_channels={in_channels}, '
                f'out_channels={self.out_channels}')
        self.use_projection = use_projection
        self.downsample = None  # built last by _make_shortcut (mmdet's state-dict order)
        self.drop_path_rate = drop_path_rate
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.act = build_act(act_cfg)

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    def _make_shortcut(self):
        """The 1x1 conv + norm projection shortcut (``downsample``), when needed."""
        if self.use_projection:
            self.downsample = nn.Sequential(
                build_conv_layer(self.conv_cfg, self.in_channels, self.out_channels,
                                 kernel_size=1, stride=self.stride, bias=False),
                build_norm_layer(self.norm_cfg, self.out_channels)[1])

    # The last norm of the residual branch (zero-initialised with ``zero_init_residual``).
    last_norm_name = ''

    @property
    def last_norm(self) -> nn.Module:
        return getattr(self, self.last_norm_name)

    def init_weights(self):
        super().init_weights()
        if self.zero_init_residual:
            constant_init(self.last_norm, 0)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:

        def _inner(x):
            identity = x if self.downsample is None else self.downsample(x)
            return self.drop_path(self._residual(x)) + identity

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner, x, use_reentrant=False)
        else:
            out = _inner(x)
        return self.act(out)


class ResidualBlock(_ResBlockBase):
    """Basic residual block: 3x3 conv - norm - act - 3x3 conv - norm, plus shortcut, act.

    From He et al., "Deep Residual Learning for Image Recognition", CVPR 2016
    (https://arxiv.org/abs/1512.03385); TF Model Garden calls it ``ResidualBlock``, mmdet
    ``BasicBlock`` (same sub-module names as the latter).

    Args:
        in_channels (int): Input channels, >= 1.
        planes (int): Width of both convs; output channels (expansion 1), >= 1.
        stride (int): Stride of the first conv (and of the projection), >= 1. Default: 1.
        dilation (int): Dilation of the first conv, >= 1. Default: 1.
        groups (int): Must be 1 (grouped convs are a bottleneck option). Default: 1.
        base_width (int): Unused here (>= 1); accepted for a uniform block interface.
            Default: 64.
        stride_in_1x1 (bool): Unused here (bottleneck option). Default: False.
        use_projection (bool, optional): Force (True) or forbid (False) the 1x1 projection
            shortcut; ``None`` adds it when stride or channels change. Default: None.
        drop_path_rate (float): Stochastic depth: probability of dropping the residual
            branch per sample in training, in [0, 1). Default: 0.
        zero_init_residual (bool): Zero-initialise the last norm's weight in
            ``init_weights`` so the block starts as identity. Default: False.
        with_cp (bool): Gradient checkpointing of the block. Default: False.
        conv_cfg (dict, optional): Conv layer config. Default: None (Conv2d).
        norm_cfg (dict): Norm layer config (BN, SyncBN, GN...). Default: dict(type='BN').
        act_cfg (dict): Activation config (ReLU, Swish...). Default: dict(type='ReLU').
        dcn (dict, optional): Deformable conv config (e.g. ``dict(type='DCNv2',
            deform_groups=1)``) used for the stride-1 second conv. Default: None.
        init_cfg (dict | list[dict], optional): Initialisation config. Default: None.

    Example:
        >>> block = ResidualBlock(64, 128, stride=2)
        >>> block(torch.rand(1, 64, 32, 32)).shape
        torch.Size([1, 128, 16, 16])
    """

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1, dilation: int = 1,
                 groups: int = 1, base_width: int = 64, stride_in_1x1: bool = False,
                 use_projection: Optional[bool] = None, drop_path_rate: float = 0.,
                 zero_init_residual: bool = False, with_cp: bool = False,
                 conv_cfg: Optional[Dict] = None, norm_cfg: Dict = dict(type='BN'),
                 act_cfg: Optional[Dict] = dict(type='ReLU'), dcn: Optional[Dict] = None,
                 init_cfg=None):
        self._check_args(dilation=dilation, groups=groups, base_width=base_width,
                         stride_in_1x1=stride_in_1x1)
        if groups != 1:
            raise ConfigError(f'ResidualBlock: groups={groups} is not supported by the basic '
                              'residual block (ResNet-18/34); valid choices: 1 (use a '
                              'bottleneck depth for ResNeXt)')
        super().__init__(in_channels, planes, stride, use_projection, drop_path_rate,
                         zero_init_residual, with_cp, conv_cfg, norm_cfg, act_cfg, init_cfg)
        self.dilation = dilation
        self.conv1 = build_conv_layer(conv_cfg, in_channels, planes, 3, stride=stride,
                                      padding=dilation, dilation=dilation, bias=False)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, planes, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.act1 = build_act(act_cfg)
        self.conv2 = _build_dcn_or_conv(conv_cfg, dcn, planes, planes, 3, padding=1, bias=False)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, planes, postfix=2)
        self.add_module(self.norm2_name, norm2)
        self.last_norm_name = self.norm2_name
        self._make_shortcut()

    def _residual(self, x):
        out = self.act1(self.norm1(self.conv1(x)))
        return self.norm2(self.conv2(out))


class BottleneckBlock(_ResBlockBase):
    """Bottleneck residual block: 1x1 - 3x3 - 1x1 convs with norms, expansion 4.

    From He et al., "Deep Residual Learning for Image Recognition", CVPR 2016
    (https://arxiv.org/abs/1512.03385); grouped 3x3 conv as in ResNeXt (Xie et al., CVPR
    2017, https://arxiv.org/abs/1611.05431). Same sub-module names as mmdet's ``Bottleneck``.

    Args:
        in_channels (int): Input channels, >= 1.
        planes (int): Bottleneck width (of the 1x1 and 3x3 convs when ``groups == 1``), >= 1;
            the output has ``4 * planes`` channels.
        stride (int): Stride of the block, >= 1. Default: 1.
        dilation (int): Dilation of the 3x3 conv, >= 1. Default: 1.
        groups (int): Groups of the 3x3 conv (ResNeXt cardinality), >= 1. Default: 1.
        base_width (int): ResNeXt width per group at ``planes == 64``, >= 1; with
            ``groups > 1`` the inner width is ``floor(planes * base_width / 64) * groups``
            (which must be >= 1). Default: 64.
        stride_in_1x1 (bool): Put the stride on the first 1x1 conv (Caffe / MSRA style)
            instead of the 3x3 conv (PyTorch style). Default: False.
        use_projection (bool, optional): Force or forbid the projection shortcut; ``None``
            adds it when stride or channels change. Default: None.
        drop_path_rate (float): Stochastic depth rate of the residual branch, in [0, 1).
            Default: 0.
        zero_init_residual (bool): Zero-initialise the last norm's weight. Default: False.
        with_cp (bool): Gradient checkpointing of the block. Default: False.
        conv_cfg (dict, optional): Conv layer config. Default: None.
        norm_cfg (dict): Norm layer config. Default: dict(type='BN').
        act_cfg (dict): Activation config. Default: dict(type='ReLU').
        dcn (dict, optional): Deformable conv config for the 3x3 conv, e.g.
            ``dict(type='DCNv2', deform_groups=1)``. Default: None.
        init_cfg (dict | list[dict], optional): Initialisation config. Default: None.

    Example:
        >>> block = BottleneckBlock(64, 64)
        >>> block(torch.rand(1, 64, 32, 32)).shape
        torch.Size([1, 256, 32, 32])
    """

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, dilation: int = 1,
                 groups: int = 1, base_width: int = 64, stride_in_1x1: bool = False,
                 use_projection: Optional[bool] = None, drop_path_rate: float = 0.,
                 zero_init_residual: bool = False, with_cp: bool = False,
                 conv_cfg: Optional[Dict] = None, norm_cfg: Dict = dict(type='BN'),
                 act_cfg: Optional[Dict] = dict(type='ReLU'), dcn: Optional[Dict] = None,
                 init_cfg=None):
        self._check_args(dilation=dilation, groups=groups, base_width=base_width,
                         stride_in_1x1=stride_in_1x1)
        super().__init__(in_channels, planes, stride, use_projection, drop_path_rate,
                         zero_init_residual, with_cp, conv_cfg, norm_cfg, act_cfg, init_cfg)
        width = planes if groups == 1 else math.floor(planes * base_width / 64) * groups
        if width < 1:
            raise ConfigError(
                f'BottleneckBlock: base_width={base_width} must be >= {math.ceil(64 / planes)} '
                f'for planes={planes} (the grouped width floor({planes} x {base_width} / 64) x '
                f'{groups} is 0)')
        self.width = width
        self.dilation = dilation
        stride1, stride2 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = build_conv_layer(conv_cfg, in_channels, width, 1, stride=stride1, bias=False)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, width, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.act1 = build_act(act_cfg)
        self.conv2 = _build_dcn_or_conv(conv_cfg, dcn, width, width, 3, stride=stride2,
                                        padding=dilation, dilation=dilation, groups=groups,
                                        bias=False)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, width, postfix=2)
        self.add_module(self.norm2_name, norm2)
        self.act2 = build_act(act_cfg)
        self.conv3 = build_conv_layer(conv_cfg, width, self.out_channels, 1, bias=False)
        self.norm3_name, norm3 = build_norm_layer(norm_cfg, self.out_channels, postfix=3)
        self.add_module(self.norm3_name, norm3)
        self.last_norm_name = self.norm3_name
        self._make_shortcut()

    @property
    def norm3(self) -> nn.Module:
        return getattr(self, self.norm3_name)

    def _residual(self, x):
        out = self.act1(self.norm1(self.conv1(x)))
        out = self.act2(self.norm2(self.conv2(out)))
        return self.norm3(self.conv3(out))


#: Block types by the names used in block spec tables ('basic' is an alias of 'residual').
RESIDUAL_BLOCKS = {'residual': ResidualBlock, 'basic': ResidualBlock,
                   'bottleneck': BottleneckBlock}


def get_residual_block(name: str, field: str = 'block_fn', owner: str = 'residual_blocks'):
    """Return the block class for ``name`` or raise a ``ConfigError`` naming the choices."""
    check_choice(owner, field, name, tuple(RESIDUAL_BLOCKS), 'a residual block type')
    return RESIDUAL_BLOCKS[name]
