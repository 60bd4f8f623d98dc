"""SpineResNet: the scale-decreased ResNet baseline, built from the shared residual blocks.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
https://arxiv.org/abs/1512.03385. The same blocks as :class:`~.SpineNet`
(:mod:`mmdet_spine.models.layers.residual_blocks`), so ResNet and SpineNet comparisons differ
only in the wiring; module names equal mmdet's ``ResNet`` so its checkpoints load as they are.
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule, Sequential
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS

from ..layers.residual_blocks import build_act, get_residual_block
from ..layers.config_checks import check_act_cfg, check_norm_cfg

#: depth -> (block type, blocks per stage).
SPINE_RESNET_ARCH_SETTINGS = {
    18: ('residual', (2, 2, 2, 2)),
    34: ('residual', (3, 4, 6, 3)),
    50: ('bottleneck', (3, 4, 6, 3)),
    101: ('bottleneck', (3, 4, 23, 3)),
    152: ('bottleneck', (3, 8, 36, 3)),
}


@MODELS.register_module()
class SpineResNet(BaseModule):
    """ResNet backbone (ResNet-18/34/50/101/152, optionally ResNeXt) from the shared blocks.

    From He et al., "Deep Residual Learning for Image Recognition", CVPR 2016
    (https://arxiv.org/abs/1512.03385); ResNeXt (``groups``/``base_width``) from Xie et al.,
    "Aggregated Residual Transformations for Deep Neural Networks", CVPR 2017.

    State dicts are key-for-key those of mmdet's ``ResNet`` (``conv1``, ``bn1``,
    ``layer1..4.<i>.conv1/bn1/...``, ``downsample.0/1``), so ``init_cfg=dict(type=
    'Pretrained', checkpoint='torchvision://resnet50')`` and mmdet checkpoints load as is.

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        in_channels (int): Input image channels. Default: 3.
        stem_channels (int): Channels of the 7x7 stem conv. Default: 64.
        base_channels (int): Width of the first stage; doubles per stage. Default: 64.
        num_stages (int): Stages used, 1-4. Default: 4.
        strides (Sequence[int]): Stride of the first block of each stage. Default: (1, 2, 2, 2).
        dilations (Sequence[int]): Dilation of each stage. Default: (1, 1, 1, 1).
        out_indices (Sequence[int]): Stages whose outputs are returned. Default: (0, 1, 2, 3).
        style (str): 'pytorch' (stride on the 3x3 conv) or 'caffe' (on the first 1x1).
            Default: 'pytorch'.
        stride_in_1x1 (bool, optional): Overrides ``style``. Default: None.
        frozen_stages (int): -1 freezes nothing, 0 the stem, ``n`` the stem and stages 1..n
            (``requires_grad=False`` and eval mode). Default: -1.
        conv_cfg (dict, optional): Conv layer config. Default: None.
        norm_cfg (dict): Norm config. Default: dict(type='BN', requires_grad=True).
        act_cfg (dict): Activation config. Default: dict(type='ReLU').
        norm_eval (bool): Keep BatchNorm layers in eval mode while training. Default: True.
        dcn (dict, optional): Deformable conv config, e.g. ``dict(type='DCNv2',
            deform_groups=1)``, for the 3x3 conv of blocks in stages with
            ``stage_with_dcn``. Default: None.
        stage_with_dcn (Sequence[bool]): Per stage. Default: (False, False, False, False).
        groups (int): ResNeXt cardinality (bottleneck depths only). Default: 1.
        base_width (int): ResNeXt width per group. Default: 64 (ResNeXt 32x4d: 4).
        drop_path_rate (float): Stochastic depth: block ``k`` (1-based) of ``N`` drops its
            residual branch with probability ``rate * k / N``. Default: 0.
        with_cp (bool): Gradient checkpointing in the blocks. Default: False.
        zero_init_residual (bool): Zero-init the last norm of each block. Default: True.
        num_classes (int, optional): Classification mode (ImageNet-style, as detectron2 /
            torchvision): global average pooling of the last stage and a linear layer ``fc``
            to ``num_classes`` logits; ``forward`` then returns a ``(N, num_classes)`` tensor
            instead of the tuple of stage outputs. Its keys match torchvision's ``fc``.
            Default: None (backbone mode).
        init_cfg (dict | list[dict], optional): Initialisation config. Default: Kaiming for
            convs, constant 1 for norms.

    Example:
        >>> model = SpineResNet(depth=18).eval()
        >>> [tuple(o.shape) for o in model(torch.rand(1, 3, 64, 64))]
        [(1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 4, 4), (1, 512, 2, 2)]
    """

    arch_settings = SPINE_RESNET_ARCH_SETTINGS

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
        check_norm_cfg(norm_cfg, 'SpineResNet')
        check_act_cfg(act_cfg, 'SpineResNet')
        if depth not in self.arch_settings:
            raise ValueError(f'depth={depth!r} is not a SpineResNet depth; valid choices: '
                             f"{', '.join(str(d) for d in self.arch_settings)}")
        if not 1 <= num_stages <= 4:
            raise ValueError(f'num_stages={num_stages} must be in 1..4')
        for name, seq in (('strides', strides), ('dilations', dilations),
                          ('stage_with_dcn', stage_with_dcn)):
            if len(seq) < num_stages:
                raise ValueError(f'{name}={tuple(seq)} needs one entry per stage '
                                 f'(num_stages={num_stages})')
        bad = [i for i in out_indices if not 0 <= i < num_stages]
        if bad:
            raise ValueError(f'out_indices={tuple(out_indices)} has {bad}; valid choices: '
                             f'0..{num_stages - 1}')
        if style not in ('pytorch', 'caffe'):
            raise ValueError(f"style={style!r} is not a ResNet style; valid choices: pytorch, "
                             'caffe')
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages={frozen_stages} must be in -1..{num_stages}')
        if dcn is not None and not any(stage_with_dcn[:num_stages]):
            raise ValueError(f'dcn={dcn} is set but stage_with_dcn={tuple(stage_with_dcn)} '
                             'enables it in no stage')
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'drop_path_rate={drop_path_rate} must be in [0, 1)')
        block_fn, stage_blocks = self.arch_settings[depth]
        block = get_residual_block(block_fn)
        if groups != 1 and block_fn != 'bottleneck':
            raise ValueError(f'groups={groups} needs a bottleneck depth (50, 101, 152); '
                             f'depth={depth} uses basic residual blocks, valid groups: 1')
        self.depth = depth
        self.num_stages = num_stages
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
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
            if num_classes < 1:
                raise ValueError(f'num_classes={num_classes} must be >= 1 (or None for a '
                                 'backbone)')
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(in_ch, num_classes)
        self._freeze_stages()

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    def _freeze_stages(self):
        mods = []
        if self.frozen_stages >= 0:
            mods += [self.conv1, self.norm1]
        mods += [getattr(self, f'layer{i}') for i in range(1, self.frozen_stages + 1)]
        for m in mods:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

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

    def train(self, mode: bool = True):
        """Set train mode, keeping frozen stages (and all BN with ``norm_eval``) in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
