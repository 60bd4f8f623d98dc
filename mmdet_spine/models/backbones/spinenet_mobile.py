"""SpineNet-Mobile: the scale-permuted backbone with MBConv blocks.

Du et al., "Efficient Scale-Permuted Backbone with Learned Resource Distribution", ECCV 2020,
https://arxiv.org/abs/2010.11426; SpineNet: Du et al., CVPR 2020,
https://arxiv.org/abs/1912.05027.

Built by :class:`~.SpineNet`'s builder from a different block table
(:data:`SPINENET_MOBILE_BLOCK_SPECS`) and width table; only the stem, the block type
(mmdet's ``InvertedResidual`` with squeeze-excitation) and the resampling (depthwise) differ.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import ModuleList, Sequential

from mmdet.models.layers import InvertedResidual
from mmdet.registry import MODELS
from mmdet_spine.errors import ConfigError

from ..layers.config_checks import FRACTION, POSITIVE_INT, check_fields
from ..layers.cross_scale_resample import DepthwiseCrossScaleResample
from .spinenet import BlockSpec, SpineNet

#: SpineNet-Mobile-49 block specs (TF Model Garden ``spinenet_mobile.py``); node 0 is the
#: level-1 stem block, node 1 the level-2 stem block.
SPINENET_MOBILE_BLOCK_SPECS: List[BlockSpec] = [
    BlockSpec(2, 'mbconv', (0, 1), False),
    BlockSpec(2, 'mbconv', (1, 2), False),
    BlockSpec(4, 'mbconv', (1, 2), False),
    BlockSpec(3, 'mbconv', (3, 4), False),
    BlockSpec(4, 'mbconv', (3, 5), False),
    BlockSpec(6, 'mbconv', (4, 6), False),
    BlockSpec(4, 'mbconv', (4, 6), False),
    BlockSpec(5, 'mbconv', (7, 8), False),
    BlockSpec(7, 'mbconv', (7, 9), False),
    BlockSpec(5, 'mbconv', (9, 10), False),
    BlockSpec(5, 'mbconv', (9, 11), False),
    BlockSpec(4, 'mbconv', (6, 11), True),
    BlockSpec(3, 'mbconv', (5, 11), True),
    BlockSpec(5, 'mbconv', (8, 13), True),
    BlockSpec(7, 'mbconv', (6, 15), True),
    BlockSpec(6, 'mbconv', (13, 15), True),
]

#: Block width per level before ``filter_size_scale`` (level 0: the stem conv).
SPINENET_MOBILE_FILTER_SIZES: Dict[int, int] = {0: 8, 1: 16, 2: 24, 3: 40, 4: 80, 5: 112,
                                                6: 112, 7: 112}

#: Scaling of each SpineNet-Mobile model.
SPINENET_MOBILE_ARCH_SETTINGS: Dict[str, Dict] = {
    '49': dict(endpoints_num_filters=48, filter_size_scale=1.0, block_repeats=1),
    '49S': dict(endpoints_num_filters=40, filter_size_scale=0.65, block_repeats=1),
    '49XS': dict(endpoints_num_filters=24, filter_size_scale=0.6, block_repeats=1),
}


@MODELS.register_module()
class SpineNetMobile(SpineNet):
    """SpineNet-Mobile backbone: scale-permuted MBConv blocks with depthwise resampling.

    From Du et al., "Efficient Scale-Permuted Backbone with Learned Resource Distribution",
    ECCV 2020 (https://arxiv.org/abs/2010.11426), on SpineNet (Du et al., CVPR 2020,
    https://arxiv.org/abs/1912.05027). Parameter counts equal TF Model Garden's (49XS
    842,456; 49S 975,678; 49 2,268,708).

    Stem (``stem_conv``): 3x3/2 conv to the level-0 width + norm + act; stem blocks
    (``init_blocks.0``: MBConv to the level-1 width, stride 1; ``init_blocks.1``: MBConv to
    the level-2 width, stride 2). Every block is mmdet's ``InvertedResidual`` (1x1 expand,
    3x3 depthwise, squeeze-excitation, 1x1 project); the first block of a group gates its SE
    with a hard sigmoid and later repeats with a sigmoid, as in TF. Block levels above
    ``max_level`` are clamped to it (TF does the same).

    Args:
        arch (str): '49', '49S' or '49XS'. Default: '49'.
        se_ratio (float): SE width = ``max(1, int(block input channels * se_ratio))``, in
            (0, 1]. Default: 0.2.
        expand_ratio (int): MBConv expansion, >= 1. Default: 6.
        se_act_cfg (tuple[dict | str], optional): (inner activation, gate) of every block's
            SE, configs or type names, e.g. ``('Swish', 'Sigmoid')`` for tensorflow/tpu's
            SpineNet-MBConv weights. Default: None (TF Model Garden's: ReLU, and the gates
            described above).
        frozen_stages (int): In ``-1..len(block_specs) + 1``, as :class:`~.SpineNet`: -1
            freezes nothing; 0 the 3x3 stem conv (``stem_conv``); 1 also both MBConv stem
            groups (``init_blocks``: level 1 and level 2); ``n >= 2`` also the nodes of specs
            ``1..n-1``. Default: -1.
        **kwargs: As :class:`~.SpineNet` (``resample_alpha`` is not used and must not be
            given: the resampling is depthwise). Default ``act_cfg`` is swish
            (``dict(type='SiLU')``), as in TF's SpineNet-Mobile recipes.

    Example:
        >>> model = SpineNetMobile(arch='49XS').eval()
        >>> [tuple(o.shape) for o in model(torch.rand(1, 3, 128, 128))]
        [(1, 24, 16, 16), (1, 24, 8, 8), (1, 24, 4, 4), (1, 24, 2, 2), (1, 24, 1, 1)]
    """

    arch_settings = SPINENET_MOBILE_ARCH_SETTINGS
    default_block_specs = SPINENET_MOBILE_BLOCK_SPECS
    filter_sizes = SPINENET_MOBILE_FILTER_SIZES
    block_fns = ('mbconv',)
    stem_levels = (0, 1, 2)
    _display_name = 'SpineNetMobile'

    def __init__(self, arch: str = '49', se_ratio: float = 0.2, expand_ratio: int = 6,
                 act_cfg: Dict = dict(type='SiLU'), se_act_cfg: Optional[Sequence] = None,
                 **kwargs):
        name = self._display_name
        check_fields(name, dict(se_ratio=FRACTION, expand_ratio=POSITIVE_INT),
                     dict(se_ratio=se_ratio, expand_ratio=expand_ratio))
        if kwargs.get('resample_alpha') is not None:
            raise ConfigError(f"{name}: resample_alpha={kwargs['resample_alpha']!r} is not "
                              'used (SpineNet-Mobile resamples with depthwise convs); remove it')
        self.se_ratio = se_ratio
        self.expand_ratio = expand_ratio
        self.se_act_cfg = None if se_act_cfg is None else tuple(
            dict(type=a) if isinstance(a, str) else a for a in se_act_cfg)
        super().__init__(arch=arch, act_cfg=act_cfg, **kwargs)

    def _adjust_specs(self, specs: List[BlockSpec]) -> List[BlockSpec]:
        return [s._replace(level=min(s.level, self.max_level)) for s in specs]

    def _block_out_channels(self, level: int, block_fn: str) -> int:
        return self._filters(level)

    def _mbconv(self, in_channels: int, out_channels: int, stride: int, drop_path_rate: float,
                gate: str) -> nn.Module:
        mid = in_channels * self.expand_ratio
        squeeze = max(1, int(in_channels * self.se_ratio))
        # mmdet's SELayer squeezes to int(channels / ratio): aim at squeeze + 0.5 so that
        # floating-point error cannot round it down.
        se_cfg = dict(channels=mid, ratio=mid / (squeeze + 0.5), conv_cfg=self.conv_cfg,
                      act_cfg=self.se_act_cfg or (dict(type='ReLU'), gate))
        block = InvertedResidual(
            in_channels, out_channels, mid, kernel_size=3, stride=stride, se_cfg=se_cfg,
            with_expand_conv=self.expand_ratio != 1,
            conv_cfg=self._tf_conv_cfg() if stride > 1 else self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg, drop_path_rate=drop_path_rate, with_cp=self.with_cp)
        assert block.se.conv1.conv.out_channels == squeeze
        return block

    def _make_block_group(self, block_fn: str, level: int, drop_path_rate: float,
                          in_channels: Optional[int] = None, out_level: Optional[int] = None,
                          stride: int = 1) -> Sequential:
        out_channels = self._filters(level if out_level is None else out_level)
        in_channels = out_channels if in_channels is None else in_channels
        hard_sigmoid = dict(type='HSigmoid', bias=3.0, divisor=6.0)
        layers = [self._mbconv(in_channels, out_channels, stride, drop_path_rate, hard_sigmoid)]
        for _ in range(1, self.settings['block_repeats']):
            layers.append(self._mbconv(out_channels, out_channels, 1, drop_path_rate,
                                       dict(type='Sigmoid')))
        return Sequential(*layers)

    def _make_resample(self, parent: int, level: int, block_fn: str) -> nn.Module:
        plan = self.plan
        return DepthwiseCrossScaleResample(
            plan.channels[parent], self._filters(level), in_level=plan.levels[parent],
            out_level=level, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg, padding_mode=self.padding_mode)

    def _tf_conv_cfg(self) -> Optional[Dict]:
        """``conv_cfg`` of convs that may have stride 2 (TF 'SAME' via the conv type)."""
        if self.padding_mode != 'tf_same':
            return self.conv_cfg
        if self.conv_cfg is not None:
            raise ConfigError(f"{self._display_name}: padding_mode='tf_same' pads through the "
                              f'conv type; it cannot be combined with conv_cfg={self.conv_cfg}')
        return dict(type='Conv2dTFSame')

    def _make_stem(self, in_channels: int):
        conv_cfg = self._tf_conv_cfg()
        self.stem_conv = ConvModule(in_channels, self._filters(0), 3, stride=2, padding=1,
                                    bias=False, conv_cfg=conv_cfg, norm_cfg=self.norm_cfg,
                                    act_cfg=self.act_cfg)
        self.init_blocks = ModuleList([
            self._make_block_group('mbconv', 0, 0., in_channels=self._filters(0), out_level=1),
            self._make_block_group('mbconv', 1, 0., in_channels=self._filters(1), out_level=2,
                                   stride=2),
        ])
        return [1, 2], [self._filters(1), self._filters(2)]

    def _forward_stem(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.stem_conv(x)
        feats = []
        for group in self.init_blocks:
            x = group(x)
            feats.append(x)
        return feats

    def _stem_modules(self) -> Sequence[nn.Module]:
        return [self.stem_conv]
