"""EfficientDet's class/box head and its anchors.

Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object Detection", CVPR 2020,
https://arxiv.org/abs/1911.09070 (Sec. 4.1).
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmdet.models.dense_heads import AnchorHead
from mmdet.models.task_modules.prior_generators import AnchorGenerator
from mmdet.registry import MODELS, TASK_UTILS

from ..layers import SeparableConvModule, tf_conv_init


@TASK_UTILS.register_module()
class EfficientDetAnchorGenerator(AnchorGenerator):
    """Anchors as google/automl and effdet lay them out.

    ``num_scales`` octave scales times ``aspect_ratios`` given as explicit (width, height)
    factors -- the released EfficientDet checkpoints use (1, 1), (1.4, 0.7), (0.7, 1.4), which
    mmdet's ``ratios`` (h/w with sqrt split) cannot express -- ordered scale-major (all aspects
    of the first octave first), centred in each cell, base size ``anchor_scale * stride``.
    Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object Detection", CVPR 2020,
    https://arxiv.org/abs/1911.09070.

    Args:
        strides (Sequence[int]): Level strides.
        aspect_ratios (Sequence[tuple[float, float]]): (width, height) factors.
            Default: ((1.0, 1.0), (1.4, 0.7), (0.7, 1.4)).
        octave_base_scale (float): Anchor scale (4; 5 for D7). Default: 4.
        scales_per_octave (int): Octave scales per level. Default: 3.
        **kwargs: Passed to mmdet's ``AnchorGenerator``.
    """

    def __init__(self, strides: Sequence[int],
                 aspect_ratios: Sequence[Tuple[float, float]] = ((1.0, 1.0), (1.4, 0.7),
                                                                 (0.7, 1.4)),
                 octave_base_scale: float = 4, scales_per_octave: int = 3, **kwargs):
        self.wh_factors = torch.tensor([[float(w), float(h)] for w, h in aspect_ratios])
        kwargs.setdefault('center_offset', 0.5)
        kwargs.setdefault('scale_major', False)
        super().__init__(strides, ratios=[h / w for w, h in aspect_ratios],
                         octave_base_scale=octave_base_scale,
                         scales_per_octave=scales_per_octave, **kwargs)

    def gen_single_level_base_anchors(self, base_size, scales, ratios, center=None):
        x_center = self.center_offset * base_size if center is None else center[0]
        y_center = self.center_offset * base_size if center is None else center[1]
        w_factors, h_factors = self.wh_factors[:, 0], self.wh_factors[:, 1]
        if self.scale_major:
            ws = (base_size * w_factors[:, None] * scales[None, :]).view(-1)
            hs = (base_size * h_factors[:, None] * scales[None, :]).view(-1)
        else:
            ws = (base_size * scales[:, None] * w_factors[None, :]).view(-1)
            hs = (base_size * scales[:, None] * h_factors[None, :]).view(-1)
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
        num_classes (int): Number of classes (90 for COCO's original ids).
        in_channels (int): BiFPN width.
        stacked_convs (int): Repeats per branch (3 + phi // 3). Default: 3.
        num_levels (int): Pyramid levels served (each gets its own norms). Default: 5.
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict): Norm config. Default: BN, momentum 0.01, eps 1e-3.
        act_cfg (dict): Activation. Default: ``dict(type='SiLU')``.
        prior_prob (float): Initial foreground probability of the class bias. Default: 0.01.
        init_cfg (dict | list[dict], optional): Initialisation config. Default: None, TF's
            variance scaling (normal, std sqrt(1 / fan_in)) with the class prior bias.
        **kwargs: Passed to mmdet's ``AnchorHead`` (anchor_generator, bbox_coder, losses,
            train_cfg, test_cfg).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 stacked_convs: int = 3,
                 num_levels: int = 5,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', momentum=0.01, eps=1e-3),
                 act_cfg: dict = dict(type='SiLU'),
                 prior_prob: float = 0.01,
                 init_cfg=None,
                 **kwargs):
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

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is not None:
            return
        tf_conv_init(self, 'variance_scaling')
        bias = -math.log((1 - self.prior_prob) / self.prior_prob)
        nn.init.constant_(self.cls_pred.pointwise_conv.conv.bias, bias)

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
