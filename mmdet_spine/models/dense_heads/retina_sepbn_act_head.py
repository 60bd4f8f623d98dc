"""RetinaNet head with shared convs, per-level norms and a configurable activation."""
from mmcv.cnn import build_activation_layer
from mmdet.models.dense_heads import RetinaSepBNHead
from mmdet.registry import MODELS
from mmengine.model import bias_init_with_prob, normal_init, xavier_init

from ..layers.config_checks import (FLAG, POSITIVE_INT, bound_arguments, check_act_cfg,
                                    check_anchor_levels, check_fields, check_norm_cfg)
from ..layers.separable_conv import SeparableConvModule

_OWNER = 'RetinaSepBNActHead'


@MODELS.register_module()
class RetinaSepBNActHead(RetinaSepBNHead):
    """mmdet's :class:`~mmdet.models.dense_heads.RetinaSepBNHead` with ``act_cfg`` and
    optional depthwise-separable convs.

    The SpineNet RetinaNet (Du et al., CVPR 2020, https://arxiv.org/abs/1912.05027; TF Model
    Garden ``RetinaNetHead``) shares its tower convs across levels, keeps a norm per level and
    uses swish; mmdet's head hard-codes ReLU. Everything else is mmdet's.

    With ``separable=True`` every tower conv and both predictors are TF's
    ``SeparableConv2D`` (``use_separable_conv=True``, the SpineNet-Mobile RetinaNet recipe of
    Du et al., ECCV 2020, https://arxiv.org/abs/2010.11426): a 3x3 depthwise conv (depth
    multiplier 1, no bias) then a 1x1 pointwise conv with a bias
    (:class:`~mmdet_spine.models.layers.separable_conv.SeparableConvModule`). The tower's
    pointwise bias is kept in front of the per-level BN, as TF does, so the parameter count
    is TF's. Initialisation follows TF: tower kernels Glorot-uniform, zero bias; predictor
    kernels N(0, 0.03), classifier bias from the prior 0.01.

    Args:
        act_cfg (dict): Activation after each tower norm. Default: dict(type='ReLU').
        separable (bool): Depthwise-separable tower convs and predictors. Default: False.
        **kwargs: As :class:`~mmdet.models.dense_heads.RetinaSepBNHead`, checked at build
            time: ``num_classes``, ``num_ins`` (= the anchor generator's number of strides),
            ``in_channels``, ``feat_channels`` and ``stacked_convs`` >= 1.
    """

    #: Valid range of each numeric argument (checked at build time).
    arg_rules = dict(num_classes=POSITIVE_INT, num_ins=POSITIVE_INT, in_channels=POSITIVE_INT,
                     feat_channels=POSITIVE_INT, stacked_convs=POSITIVE_INT, separable=FLAG)

    def __init__(self, *args, act_cfg: dict = dict(type='ReLU'), separable: bool = False,
                 **kwargs):
        values = bound_arguments(RetinaSepBNHead.__init__, None, *args, **kwargs)
        check_fields(_OWNER, self.arg_rules, dict(values, separable=separable))
        check_norm_cfg(values.get('norm_cfg'), _OWNER)
        check_act_cfg(act_cfg, _OWNER)
        if 'num_ins' in values:
            check_anchor_levels(_OWNER, values.get('anchor_generator'), values['num_ins'])
        self.act_cfg = act_cfg
        self.separable = separable
        super().__init__(*args, **kwargs)

    def _init_layers(self) -> None:
        super()._init_layers()
        if self.separable:
            for towers in (self.cls_convs, self.reg_convs):
                for i in range(self.stacked_convs):
                    shared = SeparableConvModule(
                        self.in_channels if i == 0 else self.feat_channels,
                        self.feat_channels, 3, conv_cfg=self.conv_cfg)
                    for tower in towers:  # shared across levels, as mmdet's plain convs
                        tower[i].conv = shared
            self.retina_cls = SeparableConvModule(
                self.feat_channels, self.num_base_priors * self.cls_out_channels, 3,
                conv_cfg=self.conv_cfg)
            self.retina_reg = SeparableConvModule(
                self.feat_channels, self.num_base_priors * 4, 3, conv_cfg=self.conv_cfg)
        for tower in (*self.cls_convs, *self.reg_convs):
            for conv_module in tower:
                conv_module.activate = build_activation_layer(self.act_cfg)

    def init_weights(self) -> None:
        """mmdet's initialisation; with ``separable`` TF's (see the class docstring)."""
        super().init_weights()
        if not self.separable:
            return
        for conv_module in (*self.cls_convs[0], *self.reg_convs[0]):
            xavier_init(conv_module.conv.depthwise_conv.conv, distribution='uniform')
            xavier_init(conv_module.conv.pointwise_conv.conv, distribution='uniform')
        for predictor, bias in ((self.retina_cls, bias_init_with_prob(0.01)),
                                (self.retina_reg, 0.)):
            normal_init(predictor.depthwise_conv.conv, std=0.03)
            normal_init(predictor.pointwise_conv.conv, std=0.03, bias=bias)
