"""Conv/FC box head with norms after the fcs too and a configurable activation."""
from typing import Tuple

import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from mmdet.registry import MODELS
from torch import Tensor

from mmdet_spine.errors import ConfigError

from ..layers.config_checks import (FLAG, NON_NEGATIVE_INT, POSITIVE_INT, Each, bound_arguments,
                                    check_act_cfg, check_fields, check_norm_cfg)

_OWNER = 'NormActConvFCBBoxHead'
_NUM_LAYERS = ('num_shared_convs', 'num_shared_fcs', 'num_cls_convs', 'num_cls_fcs',
               'num_reg_convs', 'num_reg_fcs')


@MODELS.register_module()
class NormActConvFCBBoxHead(ConvFCBBoxHead):
    """mmdet's :class:`~mmdet.models.roi_heads.bbox_heads.ConvFCBBoxHead` with a norm after
    every shared fc and ``act_cfg`` everywhere.

    The SpineNet Mask R-CNN box head (Du et al., CVPR 2020, https://arxiv.org/abs/1912.05027;
    TF Model Garden ``official/vision/modeling/heads/instance_heads.py`` ``DetectionHead``):
    4 3x3 convs, then 1 fc of 1024, each followed by a norm (SyncBN) and the activation.
    mmdet's head takes ``norm_cfg`` for its convs only and applies a plain ReLU after convs
    and fcs. Use with ``num_shared_convs=4, num_shared_fcs=1, fc_out_channels=1024``.

    Args:
        act_cfg (dict): Activation after each conv / fc norm. Default: dict(type='ReLU').
        fc_norm (bool): Add ``norm_cfg``'s norm (1-D) after each shared fc. Default: True
            (needs ``norm_cfg``).
        *args, **kwargs: As :class:`~mmdet.models.roi_heads.bbox_heads.ConvFCBBoxHead`,
            checked at build time: ``num_shared_convs``, ``num_shared_fcs``,
            ``num_cls_convs``, ``num_reg_convs`` >= 0 (not all 0), ``num_cls_fcs`` and
            ``num_reg_fcs`` 0; ``conv_out_channels``, ``fc_out_channels``, ``in_channels``,
            ``num_classes`` and ``roi_feat_size`` >= 1.
    """

    #: Valid range of each numeric argument (checked at build time).
    arg_rules = dict(
        {k: NON_NEGATIVE_INT for k in _NUM_LAYERS},
        conv_out_channels=POSITIVE_INT, fc_out_channels=POSITIVE_INT, in_channels=POSITIVE_INT,
        num_classes=POSITIVE_INT, roi_feat_size=Each(POSITIVE_INT, length=2, scalar_ok=True),
        with_avg_pool=FLAG, with_cls=FLAG, with_reg=FLAG, reg_class_agnostic=FLAG, fc_norm=FLAG)

    def __init__(self, *args, act_cfg: dict = dict(type='ReLU'), fc_norm: bool = True,
                 **kwargs):
        values = bound_arguments(ConvFCBBoxHead.__init__, None, *args, **kwargs)
        check_fields(_OWNER, self.arg_rules, dict(values, fc_norm=fc_norm))
        check_norm_cfg(values.get('norm_cfg'), _OWNER)
        check_act_cfg(act_cfg, _OWNER)
        if not any(values.get(k, 0) for k in _NUM_LAYERS):
            raise ConfigError(f'{_OWNER}: {", ".join(f"{k}=0" for k in _NUM_LAYERS)}: at least '
                              'one conv or fc is needed (SpineNet: num_shared_convs=4, '
                              'num_shared_fcs=1)')
        if values.get('num_cls_fcs', 0) or values.get('num_reg_fcs', 0):
            raise ConfigError(f'{_OWNER} normalises shared fcs only; got num_cls_fcs='
                              f"{values.get('num_cls_fcs', 0)}, num_reg_fcs="
                              f"{values.get('num_reg_fcs', 0)} (valid: 0)")
        if fc_norm and values.get('norm_cfg') is None:
            raise ConfigError(f'{_OWNER}: fc_norm=True needs norm_cfg (got None); set norm_cfg '
                              'or fc_norm=False')
        super().__init__(*args, **kwargs)
        self.act_cfg = act_cfg
        self.relu = build_activation_layer(act_cfg)
        for branch in (self.shared_convs, self.cls_convs, self.reg_convs):
            for conv_module in branch:
                conv_module.activate = build_activation_layer(act_cfg)
        self.shared_fc_norms = nn.ModuleList(
            build_norm_layer(self._norm_1d(), fc.out_features)[1] if fc_norm else nn.Identity()
            for fc in self.shared_fcs)

    def _norm_1d(self) -> dict:
        """``norm_cfg`` for (N, C) inputs: 'BN'/'BN2d' -> 'BN1d' (SyncBN, GN take both)."""
        cfg = dict(self.norm_cfg)
        if cfg['type'] in ('BN', 'BN2d'):
            cfg['type'] = 'BN1d'
        return cfg

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Class scores and box deltas of the RoI features ``x`` (N, C, H, W)."""
        for conv in self.shared_convs:
            x = conv(x)
        if self.num_shared_fcs > 0:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
            for fc, norm in zip(self.shared_fcs, self.shared_fc_norms):
                x = self.relu(norm(fc(x)))
        x_cls, x_reg = x, x
        for conv in self.cls_convs:
            x_cls = conv(x_cls)
        for conv in self.reg_convs:
            x_reg = conv(x_reg)
        if x_cls.dim() > 2:
            x_cls = (self.avg_pool(x_cls) if self.with_avg_pool else x_cls).flatten(1)
        if x_reg.dim() > 2:
            x_reg = (self.avg_pool(x_reg) if self.with_avg_pool else x_reg).flatten(1)
        cls_score = self.fc_cls(x_cls) if self.with_cls else None
        bbox_pred = self.fc_reg(x_reg) if self.with_reg else None
        return cls_score, bbox_pred
