"""SpineResNet: the scale-decreased ResNet baseline, built from the shared residual blocks.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
https://arxiv.org/abs/1512.03385. The same blocks as :class:`~.SpineNet`
(:mod:`mmdet_spine.models.layers.residual_blocks`), so ResNet and SpineNet comparisons differ
only in the wiring; module names equal mmdet's ``ResNet`` so its checkpoints load as they are.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule, Sequential

from mmdet.registry import MODELS
from mmdet_spine.errors import ConfigError

from ..layers.config_checks import (FLAG, NON_NEGATIVE_INT, POSITIVE_INT, RATE, Bound, Each,
                                    OrNone, check_act_cfg, check_choice, check_fields,
                                    check_norm_cfg)
from ..layers.residual_blocks import build_act, get_residual_block
from ..utils.freezing import FreezeMixin

#: depth -> (block type, blocks per stage).
SPINE_RESNET_ARCH_SETTINGS = {
    18: ('residual', (2, 2, 2, 2)),
    34: ('residual', (3, 4, 6, 3)),
    50: ('bottleneck', (3, 4, 6, 3)),
    101: ('bottleneck', (3, 4, 23, 3)),
    152: ('bottleneck', (3, 8, 36, 3)),
}


@MODELS.register_module()
class SpineResNet(FreezeMixin, BaseModule):
    """ResNet backbone (ResNet-18/34/50/101/152, optionally ResNeXt) from the shared blocks.

    From He et al., "Deep Residual Learning for Image Recognition", CVPR 2016
    (https://arxiv.org/abs/1512.03385); ResNeXt (``groups``/``base_width``) from Xie et al.,
    "Aggregated Residual Transformations for Deep Neural Networks", CVPR 2017.

    State dicts are key-for-key those of mmdet's ``ResNet`` (``conv1``, ``bn1``,
    ``layer1..4.<i>.conv1/bn1/...``, ``downsample.0/1``), so ``init_cfg=dict(type=
    'Pretrained', checkpoint='torchvision://resnet50')`` and mmdet checkpoints load as is.

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        in_channels (int): Input image channels, >= 1. Default: 3.
        stem_channels (int): Channels of the 7x7 stem conv, >= 1. Default: 64.
        base_channels (int): Width of the first stage, >= 1; doubles per stage. Default: 64.
        num_stages (int): Stages used, 1-4. Default: 4.
        strides (Sequence[int]): Stride (>= 1) of the first block of each stage.
            Default: (1, 2, 2, 2).
        dilations (Sequence[int]): Dilation (>= 1) of each stage. Default: (1, 1, 1, 1).
        out_indices (Sequence[int]): Stages whose outputs are returned, each in
            ``0..num_stages-1``. Default: (0, 1, 2, 3).
        style (str): 'pytorch' (stride on the 3x3 conv) or 'caffe' (on the first 1x1).
            Default: 'pytorch'.
        stride_in_1x1 (bool, optional): Overrides ``style``. Default: None.
        frozen_stages (int): In ``-1..num_stages``, mmdet ``ResNet``'s meaning: -1 freezes
            nothing; 0 the stem (``conv1`` and its norm; the max-pool has no parameters);
            ``n >= 1`` also stages ``layer1..layer<n>`` (``requires_grad=False`` and eval
            mode, by :class:`~mmdet_spine.models.utils.freezing.FreezeMixin`). detectron2's
            ``freeze_at`` counts the stem as stage 1, so ``freeze_at = frozen_stages + 1``
            (detectron2 additionally swaps the frozen BNs for ``FrozenBatchNorm2d``, which
            computes the same as a BN in eval mode). Default: -1.
        conv_cfg (dict, optional): Conv layer config. Default: None.
        norm_cfg (dict): Norm config. Default: dict(type='BN', requires_grad=True).
        act_cfg (dict): Activation config. Default: dict(type='ReLU').
        norm_eval (bool): Keep BatchNorm layers in eval mode while training. Default: True.
        dcn (dict, optional): Deformable conv config, e.g. ``dict(type='DCNv2',
            deform_groups=1)``, for the 3x3 conv of blocks in stages with
            ``stage_with_dcn``. Default: None.
        stage_with_dcn (Sequence[bool]): Per stage. Default: (False, False, False, False).
        groups (int): ResNeXt cardinality, >= 1 (> 1 for bottleneck depths only).
            Default: 1.
        base_width (int): ResNeXt width per group, >= 1. Default: 64 (ResNeXt 32x4d: 4).
        drop_path_rate (float): Stochastic depth, in [0, 1): block ``k`` (1-based) of ``N``
            drops its residual branch with probability ``rate * k / N``. Default: 0.
        with_cp (bool): Gradient checkpointing in the blocks. Default: False.
        zero_init_residual (bool): Zero-init the last norm of each block. Default: True.
        num_classes (int, optional): Classification mode (ImageNet-style, as detectron2 /
            torchvision): global average pooling of the last stage and a linear layer ``fc``
            to ``num_classes`` logits; ``forward`` then returns a ``(N, num_classes)`` tensor
            instead of the tuple of stage outputs. Its keys match torchvision's ``fc``.
            >= 1, or None (backbone mode). Default: None.
        init_cfg (dict | list[dict], optional): Initialisation config. Default: Kaiming for
            convs, constant 1 for norms.

    Example:
        >>> model = SpineResNet(depth=18).eval()
        >>> [tuple(o.shape) for o in model(torch.rand(1, 3, 64, 64))]
        [(1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 4, 4), (1, 512, 2, 2)]
    """

    arch_settings = SPINE_RESNET_ARCH_SETTINGS
    #: Valid range of each numeric argument (checked at build time; per-stage sequences
    #: also need ``num_stages`` entries, checked in ``__init__``).
    arg_rules = dict(in_channels=POSITIVE_INT, stem_channels=POSITIVE_INT,
                     base_channels=POSITIVE_INT, num_stages=Bound(1, 4, integer=True),
                     strides=Each(POSITIVE_INT), dilations=Each(POSITIVE_INT),
                     out_indices=Each(NON_NEGATIVE_INT), stage_with_dcn=Each(FLAG),
                     stride_in_1x1=OrNone(FLAG), groups=POSITIVE_INT, base_width=POSITIVE_INT,
                     drop_path_rate=RATE, with_cp=FLAG, zero_init_residual=FLAG,
                     norm_eval=FLAG, num_classes=OrNone(POSITIVE_INT))

    def __init__(self, depth: int, in_channels: int = 3, stem_channels: int = 64,
                 base_channels: int = 64, num_stages: int = 4,
                 strides: Sequence[int] = (1, 2, 2, 2), dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Sequence[int] = (0, 1, 2, 3), style: str = 'pytorch',
                 stride_in_1x1: Optional[bool] = None, frozen_stages: int = -1,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN', requires_grad=True),
                 act_cfg: Dict = dict(type='ReLU'), norm_eval: bool = True,
                 dcn: Optional[Dict] = None,
                 stage_with_dcn: Sequence[bool] = (False, False, False, False),
                 groups: int = 1, base_width: int = 64, drop_path_rate: float = 0.,
                 with_cp: bool = False, zero_init_residual: bool = True,
                 num_classes: Optional[int] = None,
                 init_cfg=[dict(type='Kaiming', layer='Conv2d'),
                           dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]):
        super().__init__(init_cfg=init_cfg)
        name = 'SpineResNet'
        check_choice(name, 'depth', depth, tuple(self.arch_settings), 'a SpineResNet depth')
        check_norm_cfg(norm_cfg, name)
        check_act_cfg(act_cfg, name)
        check_fields(name, self.arg_rules, dict(
            in_channels=in_channels, stem_channels=stem_channels, base_channels=base_channels,
            num_stages=num_stages, strides=strides, dilations=dilations,
            out_indices=out_indices, stage_with_dcn=stage_with_dcn, stride_in_1x1=stride_in_1x1,
            groups=groups, base_width=base_width, drop_path_rate=drop_path_rate,
            with_cp=with_cp, zero_init_residual=zero_init_residual, norm_eval=norm_eval,
            num_classes=num_classes))
        for field, seq in (('strides', strides), ('dilations', dilations),
                           ('stage_with_dcn', stage_with_dcn)):
            if len(seq) < num_stages:
                raise ConfigError(f'{name}: {field}={tuple(seq)} needs one entry per stage '
                                  f'(num_stages={num_stages})')
        bad = [i for i in out_indices if not 0 <= i < num_stages]
        if bad:
            raise ConfigError(f'{name}: out_indices={tuple(out_indices)} has {bad}; valid '
                              f'choices: 0..{num_stages - 1}')
        check_choice(name, 'style', style, ('pytorch', 'caffe'), 'a ResNet style')
        if dcn is not None and not any(stage_with_dcn[:num_stages]):
            raise ConfigError(f'{name}: dcn={dcn} is set but stage_with_dcn='
                              f'{tuple(stage_with_dcn)} enables it in no stage')
        block_fn, stage_blocks = self.arch_settings[depth]
        block = get_residual_block(block_fn)
        if groups != 1 and block_fn != 'bottleneck':
            raise ConfigError(f'{name}: groups={groups} needs a bottleneck depth (50, 101, '
                              f'152); depth={depth} uses basic residual blocks, valid groups: 1')
        self.depth = depth
        self.num_stages = num_stages
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self._check_freezing(name, num_stages, '0: stem, n: + layer1..layer<n>')
        self.stage_blocks = stage_blocks[:num_stages]
        stride_in_1x1 = (style == 'caffe') if stride_in_1x1 is None else stride_in_1x1

        self.conv1 = build_conv_layer(conv_cfg, in_channels, stem_channels, kernel_size=7,
                                      stride=2, padding=3, bias=False)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = build_act(act_cfg)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        total = sum(self.stage_blocks)
        k = 0
        in_ch = stem_channels
        self.res_layers = []
        self.out_channels = []
        for i, num_blocks in enumerate(self.stage_blocks):
            planes = base_channels * 2**i
            blocks = []
            for b in range(num_blocks):
                k += 1
                blocks.append(block(
                    in_ch, planes, stride=strides[i] if b == 0 else 1, dilation=dilations[i],
                    groups=groups, base_width=base_width, stride_in_1x1=stride_in_1x1,
                    drop_path_rate=drop_path_rate * k / total,
                    zero_init_residual=zero_init_residual, with_cp=with_cp,
                    conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg,
                    dcn=dcn if stage_with_dcn[i] else None))
                in_ch = blocks[-1].out_channels
            name = f'layer{i + 1}'
            self.add_module(name, Sequential(*blocks))
            self.res_layers.append(name)
            if i in self.out_indices:
                self.out_channels.append(in_ch)
        self.num_classes = num_classes
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(in_ch, num_classes)
        self._freeze_stages()

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    def frozen_modules(self) -> List[nn.Module]:
        """What ``frozen_stages`` freezes: the stem, then ``layer1..layer<frozen_stages>``."""
        mods = [self.conv1, self.norm1] if self.frozen_stages >= 0 else []
        return mods + [getattr(self, f'layer{i}') for i in range(1, self.frozen_stages + 1)]

    def forward(self, x: torch.Tensor):
        x = self.maxpool(self.relu(self.norm1(self.conv1(x))))
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        if self.num_classes is not None:
            return self.fc(torch.flatten(self.avgpool(x), 1))
        return tuple(outs)
