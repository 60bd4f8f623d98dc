"""FCN mask head with a norm after the up-sampling deconv and a configurable activation."""
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.registry import MODELS
from torch import Tensor

from mmdet_spine.errors import ConfigError

from ..layers.config_checks import (FLAG, NON_NEGATIVE_INT, ODD_POSITIVE_INT, POSITIVE,
                                    POSITIVE_INT, Choice, Each, bound_arguments, check_act_cfg,
                                    check_fields, check_norm_cfg)

_OWNER = 'NormActFCNMaskHead'
#: mmdet's ``FCNMaskHead`` upsampling types.
UPSAMPLE_TYPES = (None, 'deconv', 'nearest', 'bilinear', 'carafe')


@MODELS.register_module()
class NormActFCNMaskHead(FCNMaskHead):
    """mmdet's :class:`~mmdet.models.roi_heads.mask_heads.FCNMaskHead` with ``act_cfg`` and a
    norm after the deconv.

    The SpineNet Mask R-CNN mask head (Du et al., CVPR 2020, https://arxiv.org/abs/1912.05027;
    TF Model Garden ``official/vision/modeling/heads/instance_heads.py`` ``MaskHead``):
    4 3x3 convs and a 2x deconv, each followed by a norm (SyncBN) and the activation, then
    the 1x1 mask logits. mmdet's head normalises the convs only (``norm_cfg``) and uses ReLU.

    Args:
        act_cfg (dict): Activation after each norm. Default: dict(type='ReLU').
        upsample_norm (bool): Norm after the deconv (``upsample_cfg`` type 'deconv'); needs
            ``norm_cfg``. Default: True.
        *args, **kwargs: As :class:`~mmdet.models.roi_heads.mask_heads.FCNMaskHead`,
            checked at build time: ``num_convs`` >= 0; ``roi_feat_size``, ``in_channels``,
            ``conv_out_channels``, ``num_classes`` >= 1; ``conv_kernel_size`` odd;
            ``upsample_cfg.type`` one of :data:`UPSAMPLE_TYPES` with a ``scale_factor``
            > 0 (an int for 'deconv' and 'carafe').
    """

    #: Valid range of each numeric argument (checked at build time).
    arg_rules = dict(num_convs=NON_NEGATIVE_INT,
                     roi_feat_size=Each(POSITIVE_INT, length=2, scalar_ok=True),
                     in_channels=POSITIVE_INT, conv_kernel_size=ODD_POSITIVE_INT,
                     conv_out_channels=POSITIVE_INT, num_classes=POSITIVE_INT,
                     class_agnostic=FLAG, upsample_norm=FLAG)

    def __init__(self, *args, act_cfg: dict = dict(type='ReLU'), upsample_norm: bool = True,
                 **kwargs):
        values = bound_arguments(FCNMaskHead.__init__, None, *args, **kwargs)
        check_fields(_OWNER, self.arg_rules, dict(values, upsample_norm=upsample_norm))
        check_norm_cfg(values.get('norm_cfg'), _OWNER)
        check_act_cfg(act_cfg, _OWNER)
        upsample_cfg = values.get('upsample_cfg')
        if upsample_cfg is not None:
            if not isinstance(upsample_cfg, dict) or 'type' not in upsample_cfg:
                raise ConfigError(f"{_OWNER}: upsample_cfg={upsample_cfg!r} must be a dict with "
                                  "a 'type' key (e.g. dict(type='deconv', scale_factor=2))")
            kind = upsample_cfg['type']
            Choice(UPSAMPLE_TYPES, 'an upsampling type').check(_OWNER, 'upsample_cfg.type', kind)
            scale = POSITIVE_INT if kind in ('deconv', 'carafe') else POSITIVE
            check_fields(_OWNER, {'upsample_cfg.scale_factor': scale},
                         {'upsample_cfg.scale_factor': upsample_cfg[k]
                          for k in ('scale_factor',) if k in upsample_cfg})
        if upsample_norm and values.get('norm_cfg') is None:
            raise ConfigError(f'{_OWNER}: upsample_norm=True needs norm_cfg (got None); set '
                              'norm_cfg or upsample_norm=False')
        super().__init__(*args, **kwargs)
        self.act_cfg = act_cfg
        self.relu = build_activation_layer(act_cfg)
        for conv_module in self.convs:
            conv_module.activate = build_activation_layer(act_cfg)
        self.upsample_norm = None
        if upsample_norm and self.upsample_method == 'deconv':
            self.upsample_norm = build_norm_layer(self.norm_cfg, self.conv_out_channels)[1]

    def forward(self, x: Tensor) -> Tensor:
        """Mask logits (N, classes, 2H, 2W) of the RoI features ``x`` (N, C, H, W)."""
        for conv in self.convs:
            x = conv(x)
        if self.upsample is not None:
            x = self.upsample(x)
            if self.upsample_method == 'deconv':
                if self.upsample_norm is not None:
                    x = self.upsample_norm(x)
                x = self.relu(x)
        return self.conv_logits(x)
