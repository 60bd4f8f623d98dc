"""RPN head with convs shared across levels, a norm per level and a configurable activation."""
from typing import Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS
from torch import Tensor

from ..layers.config_checks import (POSITIVE_INT, bound_arguments, check_act_cfg,
                                    check_anchor_levels, check_fields, check_norm_cfg)

_OWNER = 'RPNSepBNHead'


@MODELS.register_module()
class RPNSepBNHead(RPNHead):
    """mmdet's :class:`~mmdet.models.dense_heads.RPNHead` with per-level norms and ``act_cfg``.

    The SpineNet Mask R-CNN (Du et al., CVPR 2020, https://arxiv.org/abs/1912.05027; TF Model
    Garden ``official/vision/modeling/heads/dense_prediction_heads.py`` ``RPNHead``) runs
    ``num_convs`` 3x3 convs shared over all levels, each followed by a norm of its own per
    level and the activation, then 1x1 objectness and box convs shared over levels. mmdet's
    RPNHead has neither norm nor activation options. Anchors, losses and proposal decoding
    are mmdet's.

    Args:
        num_ins (int): Number of input levels (one set of norms each), >= 1; equals the
            anchor generator's number of strides.
        norm_cfg (dict): Norm after each shared conv. Default: dict(type='BN').
        act_cfg (dict): Activation after each norm. Default: dict(type='ReLU').
        conv_cfg (dict, optional): Conv layer config.
        **kwargs: As :class:`~mmdet.models.dense_heads.RPNHead` (``num_convs``,
            ``in_channels``, ``feat_channels``, ``anchor_generator``, ...); ``num_convs``,
            ``in_channels``, ``feat_channels`` and ``num_classes`` must be >= 1.
    """

    #: Valid range of each numeric argument (checked at build time).
    arg_rules = dict(num_ins=POSITIVE_INT, in_channels=POSITIVE_INT, num_classes=POSITIVE_INT,
                     num_convs=POSITIVE_INT, feat_channels=POSITIVE_INT)

    def __init__(self, *args, num_ins: int = 5, norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'), conv_cfg: dict = None, **kwargs):
        values = bound_arguments(RPNHead.__init__, None, *args, **kwargs)
        check_fields(_OWNER, self.arg_rules, dict(values, num_ins=num_ins))
        check_norm_cfg(norm_cfg, _OWNER)
        check_act_cfg(act_cfg, _OWNER)
        check_anchor_levels(_OWNER, values.get('anchor_generator'), num_ins)
        self.num_ins = num_ins
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.conv_cfg = conv_cfg
        super().__init__(*args, **kwargs)

    def _init_layers(self) -> None:
        """Shared convs (one ConvModule per level and conv, the conv tied to level 0's) and
        the 1x1 objectness / box convs."""
        self.rpn_convs = nn.ModuleList()
        for level in range(self.num_ins):
            convs = nn.ModuleList()
            for i in range(self.num_convs):
                convs.append(ConvModule(
                    self.in_channels if i == 0 else self.feat_channels, self.feat_channels,
                    3, padding=1, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg))
                if level > 0:
                    convs[i].conv = self.rpn_convs[0][i].conv
            self.rpn_convs.append(convs)
        self.rpn_cls = nn.Conv2d(self.feat_channels,
                                 self.num_base_priors * self.cls_out_channels, 1)
        self.rpn_reg = nn.Conv2d(self.feat_channels,
                                 self.num_base_priors * self.bbox_coder.encode_size, 1)

    def forward(self, x: Tuple[Tensor]) -> Tuple[list, list]:
        """Objectness scores and box deltas of every level.

        Args:
            x (tuple[Tensor]): One feature map per level, ``num_ins`` of them.

        Returns:
            tuple[list[Tensor], list[Tensor]]: Scores and deltas per level.
        """
        if len(x) != self.num_ins:
            raise ValueError(f'RPNSepBNHead got {len(x)} feature levels, built with '
                             f'num_ins={self.num_ins}')
        cls_scores, bbox_preds = [], []
        for feat, convs in zip(x, self.rpn_convs):
            for conv in convs:
                feat = conv(feat)
            cls_scores.append(self.rpn_cls(feat))
            bbox_preds.append(self.rpn_reg(feat))
        return cls_scores, bbox_preds

    def _bbox_post_process(self, results, cfg, rescale: bool = False, with_nms: bool = True,
                           img_meta=None):
        """mmdet's post-processing on float32 boxes and scores.

        Under mixed precision (``AmpOptimWrapper`` with bfloat16, or fp16 on CPUs) the scores
        arrive in the autocast dtype, which mmcv's NMS kernels do not accept (``expected
        scalar type Float but found BFloat16``); proposals are cast back to float32 first.
        """
        for key in ('bboxes', 'scores'):
            value = results.get(key)
            if value is not None and value.is_floating_point():
                results[key] = value.float()
        return super()._bbox_post_process(results, cfg, rescale=rescale, with_nms=with_nms,
                                          img_meta=img_meta)
