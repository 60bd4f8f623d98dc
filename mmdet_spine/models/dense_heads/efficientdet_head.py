"""EfficientDet's class/box head and its anchors.

Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object Detection", CVPR 2020,
https://arxiv.org/abs/1911.09070 (Sec. 4.1).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmdet.models.dense_heads import AnchorHead
from mmdet.models.task_modules.prior_generators import AnchorGenerator
from mmdet.registry import MODELS, TASK_UTILS

from ..layers import SeparableConvModule
from ..layers.config_checks import (POSITIVE, POSITIVE_INT, Bound, Each, check_act_cfg,
                                    check_fields, check_norm_cfg)


@TASK_UTILS.register_module()
class EfficientDetAnchorGenerator(AnchorGenerator):
    """Anchors as google/automl and effdet lay them out.

    ``num_scales`` octave scales times ``aspect_ratios`` given as explicit (width, height)
    factors -- the released EfficientDet checkpoints use (1, 1), (1.4, 0.7), (0.7, 1.4), which
    mmdet's ``ratios`` (h/w with sqrt split) cannot express -- ordered scale-major (all aspects
    of the first octave first), centred in each cell, base size ``anchor_scale * stride``. A
    stride may be a (w, h) pair (EfficientDet-Lite's top levels on a non-square input whose
    sides are not multiples of 128): width and centre x then follow the w stride, height and
    centre y the h stride, as in effdet's and automl's ``Anchors`` (mmdet's generator would
    use the smaller of the two for both).
    Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object Detection", CVPR 2020,
    https://arxiv.org/abs/1911.09070.

    Args:
        strides (Sequence[int]): Level strides.
        aspect_ratios (Sequence[tuple[float, float]]): (width, height) factors.
            Default: ((1.0, 1.0), (1.4, 0.7), (0.7, 1.4)).
        octave_base_scale (float): Anchor scale, > 0 (4; 5 for D7, 3 for most Lite models).
            Default: 4.
        scales_per_octave (int): Octave scales per level, >= 1. Default: 3.
        **kwargs: Passed to mmdet's ``AnchorGenerator``.
    """

    #: Valid range of each numeric argument.
    arg_rules = dict(strides=Each(Each(POSITIVE, length=2, scalar_ok=True)),
                     aspect_ratios=Each(Each(POSITIVE, length=2)),
                     octave_base_scale=POSITIVE, scales_per_octave=POSITIVE_INT)

    def __init__(self, strides: Sequence[int],
                 aspect_ratios: Sequence[Tuple[float, float]] = ((1.0, 1.0), (1.4, 0.7),
                                                                 (0.7, 1.4)),
                 octave_base_scale: float = 4, scales_per_octave: int = 3, **kwargs):
        check_fields(type(self).__name__, self.arg_rules, dict(
            strides=strides, aspect_ratios=aspect_ratios, octave_base_scale=octave_base_scale,
            scales_per_octave=scales_per_octave))
        self.wh_factors = torch.tensor([[float(w), float(h)] for w, h in aspect_ratios])
        self._stride_sized = kwargs.get('base_sizes') is None  # set before gen_base_anchors
        kwargs.setdefault('center_offset', 0.5)
        kwargs.setdefault('scale_major', False)
        super().__init__(strides, ratios=[h / w for w, h in aspect_ratios],
                         octave_base_scale=octave_base_scale,
                         scales_per_octave=scales_per_octave, **kwargs)

    def gen_base_anchors(self) -> List[torch.Tensor]:
        """Base anchors of every level, sized by the level's (w, h) stride unless
        ``base_sizes`` were given."""
        return [self.gen_single_level_base_anchors(
                    stride if self._stride_sized else base_size, self.scales, self.ratios,
                    None if self.centers is None else self.centers[i])
                for i, (stride, base_size) in enumerate(zip(self.strides, self.base_sizes))]

    def gen_single_level_base_anchors(self, base_size, scales, ratios, center=None):
        base_w, base_h = (base_size if isinstance(base_size, (tuple, list))
                          else (base_size, base_size))
        x_center = self.center_offset * base_w if center is None else center[0]
        y_center = self.center_offset * base_h if center is None else center[1]
        w_factors, h_factors = self.wh_factors[:, 0], self.wh_factors[:, 1]
        if self.scale_major:
            ws = (base_w * w_factors[:, None] * scales[None, :]).view(-1)
            hs = (base_h * h_factors[:, None] * scales[None, :]).view(-1)
        else:
            ws = (base_w * scales[:, None] * w_factors[None, :]).view(-1)
            hs = (base_h * scales[:, None] * h_factors[None, :]).view(-1)
        return torch.stack([x_center - 0.5 * ws, y_center - 0.5 * hs,
                            x_center + 0.5 * ws, y_center + 0.5 * hs], dim=-1)


@MODELS.register_module()
class EfficientDetSepBNHead(AnchorHead):
    """EfficientDet class and box nets: separable convs shared across levels, BN per level.

    Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object Detection", CVPR 2020,
    https://arxiv.org/abs/1911.09070. Each branch repeats ``stacked_convs`` times
    [separable 3x3 conv (weights shared by all levels) -> norm (one per level) -> act] and ends
    in a separable 3x3 prediction conv. Box deltas come out in mmdet's (dx, dy, dw, dh) order.

    Args:
        num_classes (int): Number of classes, >= 1 (90 for COCO's original ids).
        in_channels (int): BiFPN width, >= 1.
        stacked_convs (int): Repeats per branch, >= 0 (3 + phi // 3). Default: 3.
        num_levels (int): Pyramid levels served (each gets its own norms), >= 1. Default: 5.
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict): Norm config. Default: BN, momentum 0.01, eps 1e-3.
        act_cfg (dict): Activation. Default: ``dict(type='SiLU')``.
        prior_prob (float): Initial foreground probability of the class bias, in (0, 1); it
            sets ``bias_prob`` of the default ``init_cfg``. Default: 0.01.
        init_cfg (dict | list[dict], optional): Initialisation config. Default: TF's variance
            scaling for every conv (``TFConv``, ``mode='variance_scaling'``: normal, std
            ``sqrt(1 / fan_in)``, biases 0) and the class prior bias on ``cls_pred``
            (:data:`DEFAULT_INIT_CFG` with ``bias_prob=prior_prob``).
        **kwargs: Passed to mmdet's ``AnchorHead`` (anchor_generator, bbox_coder, losses,
            train_cfg, test_cfg).
    """

    #: The default ``init_cfg`` (with ``bias_prob`` = ``prior_prob``).
    DEFAULT_INIT_CFG = dict(
        type='TFConv', mode='variance_scaling', layer='Conv2d',
        override=dict(type='TFConv', name='cls_pred', mode='variance_scaling', bias_prob=0.01))
    #: Valid range of each numeric argument.
    arg_rules = dict(num_classes=POSITIVE_INT, in_channels=POSITIVE_INT,
                     feat_channels=POSITIVE_INT, stacked_convs=Bound(0, integer=True),
                     num_levels=POSITIVE_INT, prior_prob=Bound(0, 1, low_open=True,
                                                               high_open=True))

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 stacked_convs: int = 3,
                 num_levels: int = 5,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', momentum=0.01, eps=1e-3),
                 act_cfg: dict = dict(type='SiLU'),
                 prior_prob: float = 0.01,
                 init_cfg=DEFAULT_INIT_CFG,
                 **kwargs):
        name = type(self).__name__
        check_fields(name, self.arg_rules, dict(
            num_classes=num_classes, in_channels=in_channels, stacked_convs=stacked_convs,
            num_levels=num_levels, prior_prob=prior_prob, **{
                k: v for k, v in kwargs.items() if k == 'feat_channels'}))
        check_norm_cfg(norm_cfg, name)
        check_act_cfg(act_cfg, name)
        if init_cfg is self.DEFAULT_INIT_CFG:
            init_cfg = dict(init_cfg, override=dict(init_cfg['override'],
                                                     bias_prob=float(prior_prob)))
        self.stacked_convs = stacked_convs
        self.num_levels = num_levels
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.prior_prob = prior_prob
        kwargs.setdefault('feat_channels', in_channels)
        super().__init__(num_classes, in_channels, init_cfg=init_cfg, **kwargs)

    def _branch(self, out_channels: int) -> Tuple[nn.ModuleList, nn.ModuleList, nn.Module]:
        convs, norms = nn.ModuleList(), nn.ModuleList()
        channels = self.in_channels
        for _ in range(self.stacked_convs):
            convs.append(SeparableConvModule(channels, self.feat_channels, 3, pw_bias=True,
                                             conv_cfg=self.conv_cfg))
            norms.append(nn.ModuleList([build_norm_layer(self.norm_cfg, self.feat_channels)[1]
                                        for _ in range(self.num_levels)]))
            channels = self.feat_channels
        pred = SeparableConvModule(channels, out_channels, 3, pw_bias=True,
                                   conv_cfg=self.conv_cfg)
        return convs, norms, pred

    def _init_layers(self) -> None:
        self.act = build_activation_layer(self.act_cfg)
        self.cls_convs, self.cls_norms, self.cls_pred = self._branch(
            self.num_base_priors * self.cls_out_channels)
        self.reg_convs, self.reg_norms, self.reg_pred = self._branch(
            self.num_base_priors * self.bbox_coder.encode_size)

    def _run_branch(self, x: torch.Tensor, level: int, convs, norms, pred) -> torch.Tensor:
        for conv, norm in zip(convs, norms):
            x = self.act(norm[level](conv(x)))
        return pred(x)

    def forward(self, x: Sequence[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Class scores and box deltas of every level.

        Args:
            x (Sequence[Tensor]): One map per level, ``num_levels`` of them.

        Returns:
            tuple[list[Tensor], list[Tensor]]: ``(N, A * C, H, W)`` scores and
            ``(N, A * 4, H, W)`` deltas per level.
        """
        if len(x) != self.num_levels:
            raise ValueError(f'{type(self).__name__} has num_levels={self.num_levels} but got '
                             f'{len(x)} feature maps')
        cls_scores, bbox_preds = [], []
        for level, feat in enumerate(x):
            cls_scores.append(self._run_branch(feat, level, self.cls_convs, self.cls_norms,
                                               self.cls_pred))
            bbox_preds.append(self._run_branch(feat, level, self.reg_convs, self.reg_norms,
                                               self.reg_pred))
        return cls_scores, bbox_preds
