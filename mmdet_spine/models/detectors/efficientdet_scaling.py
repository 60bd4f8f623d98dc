"""EfficientDet D0-D7x compound scaling: the one table, and model configs derived from it.

Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object Detection", CVPR 2020,
https://arxiv.org/abs/1911.09070. The values are google/automl's ``efficientdet_model_param_dict``
(which rwightman's effdet mirrors), not the paper's formulas: from D5 on the released models
depart from ``W = 64 * 1.35**phi``, ``D = 3 + phi``, ``R = 512 + 128 * phi``.
"""
import copy
from typing import Optional, Tuple, Union

from mmengine.config import ConfigDict

#: variant -> input size, EfficientNet arch, BiFPN width / stages, head repeats, anchor scale,
#: fusion, pyramid levels, backbone drop-connect rate (automl turns it off for D0's B0).
EFFICIENTDET_SCALING = {
    'd0': dict(input_size=512, backbone='b0', bifpn_channels=64, bifpn_stages=3, head_convs=3,
               anchor_scale=4.0, fusion='weighted', levels=(3, 7), drop_path_rate=0.0),
    'd1': dict(input_size=640, backbone='b1', bifpn_channels=88, bifpn_stages=4, head_convs=3,
               anchor_scale=4.0, fusion='weighted', levels=(3, 7), drop_path_rate=0.2),
    'd2': dict(input_size=768, backbone='b2', bifpn_channels=112, bifpn_stages=5, head_convs=3,
               anchor_scale=4.0, fusion='weighted', levels=(3, 7), drop_path_rate=0.2),
    'd3': dict(input_size=896, backbone='b3', bifpn_channels=160, bifpn_stages=6, head_convs=4,
               anchor_scale=4.0, fusion='weighted', levels=(3, 7), drop_path_rate=0.2),
    'd4': dict(input_size=1024, backbone='b4', bifpn_channels=224, bifpn_stages=7, head_convs=4,
               anchor_scale=4.0, fusion='weighted', levels=(3, 7), drop_path_rate=0.2),
    'd5': dict(input_size=1280, backbone='b5', bifpn_channels=288, bifpn_stages=7, head_convs=4,
               anchor_scale=4.0, fusion='weighted', levels=(3, 7), drop_path_rate=0.2),
    'd6': dict(input_size=1280, backbone='b6', bifpn_channels=384, bifpn_stages=8, head_convs=5,
               anchor_scale=4.0, fusion='sum', levels=(3, 7), drop_path_rate=0.2),
    'd7': dict(input_size=1536, backbone='b6', bifpn_channels=384, bifpn_stages=8, head_convs=5,
               anchor_scale=5.0, fusion='sum', levels=(3, 7), drop_path_rate=0.2),
    'd7x': dict(input_size=1536, backbone='b7', bifpn_channels=384, bifpn_stages=8,
                head_convs=5, anchor_scale=4.0, fusion='sum', levels=(3, 8),
                drop_path_rate=0.2),
}

#: Anchor (width, height) factors of the released checkpoints (automl before 2020-09-10).
ASPECT_RATIOS = ((1.0, 1.0), (1.4, 0.7), (0.7, 1.4))
#: TF's batch norm: decay 0.99 (PyTorch momentum 0.01), epsilon 1e-3.
BN_CFG = dict(type='BN', momentum=0.01, eps=1e-3, requires_grad=True)
#: ImageNet mean / std in 0-255 RGB.
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
#: Backbone stages whose outputs feed the BiFPN (strides 8, 16, 32).
BACKBONE_OUT_INDICES = (2, 4, 6)


def efficientdet_variant(variant: str) -> dict:
    """A copy of the scaling row of ``variant`` ('d0' .. 'd7', 'd7x'); unknown names fail."""
    key = variant.lower().replace('efficientdet_', '').replace('efficientdet-', '')
    if key not in EFFICIENTDET_SCALING:
        raise KeyError(f'variant={variant!r} is not an EfficientDet; valid choices: '
                       f"{', '.join(EFFICIENTDET_SCALING)}")
    return copy.deepcopy(EFFICIENTDET_SCALING[key])


def efficientdet_model_cfg(variant: str = 'd0',
                           num_classes: int = 90,
                           input_size: Optional[Union[int, Tuple[int, int]]] = None,
                           tf_same_padding: bool = True,
                           norm_cfg: Optional[dict] = None,
                           drop_path_rate: Optional[float] = None,
                           with_cp: bool = False) -> dict:
    """The mmdet ``model`` dict of an EfficientDet variant, built from :data:`EFFICIENTDET_SCALING`.

    Args:
        variant (str): 'd0' .. 'd7', 'd7x'.
        num_classes (int): Classes; 90 for COCO with its original category ids (as the
            released checkpoints), 80 for mmdet's contiguous COCO labels. Default: 90.
        input_size (int | tuple, optional): Fixed (H, W) input; default the variant's. It must
            be a multiple of ``2**max_level`` (128, or 256 for D7x).
        tf_same_padding (bool): TF 'SAME' padding with pads fixed at build time. Default: True.
        norm_cfg (dict, optional): Norm everywhere; default BN with TF's momentum / eps (use
            ``type='SyncBN'`` for multi-GPU training).
        drop_path_rate (float, optional): Backbone drop-connect; default the variant's.
        with_cp (bool): Gradient checkpointing in the backbone. Default: False.

    Returns:
        ConfigDict: ``type='EfficientDet'`` with data_preprocessor, backbone, neck, bbox_head,
        train_cfg and test_cfg.
    """
    row = efficientdet_variant(variant)
    size = row['input_size'] if input_size is None else input_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    norm_cfg = copy.deepcopy(norm_cfg or BN_CFG)
    min_level, max_level = row['levels']
    num_levels = max_level - min_level + 1
    width = row['bifpn_channels']
    from ..backbones.tf_efficientnet import B0_STAGES, TFEfficientNet, round_channels
    mult = TFEfficientNet.arch_settings[row['backbone']][0]
    backbone_channels = [round_channels(B0_STAGES[i][4] * mult) for i in BACKBONE_OUT_INDICES]
    conv_cfg = dict(type='Conv2dTFSame') if tf_same_padding else None
    return ConfigDict(
        type='EfficientDet',
        data_preprocessor=dict(
            type='DetDataPreprocessor', mean=MEAN, std=STD, bgr_to_rgb=True,
            pad_size_divisor=2**max_level),
        backbone=dict(
            type='TFEfficientNet', arch=row['backbone'], out_indices=BACKBONE_OUT_INDICES,
            drop_path_rate=(row['drop_path_rate'] if drop_path_rate is None
                            else drop_path_rate),
            tf_same_padding=tf_same_padding, input_size=size, norm_cfg=norm_cfg,
            act_cfg=dict(type='SiLU'), with_cp=with_cp),
        neck=dict(
            type='BiFPN', in_channels=backbone_channels, out_channels=width,
            num_stages=row['bifpn_stages'], start_level=0, num_outs=num_levels,
            min_level=min_level, fusion=row['fusion'], input_size=size,
            tf_same_padding=tf_same_padding, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
            act_cfg=dict(type='SiLU')),
        bbox_head=dict(
            type='EfficientDetSepBNHead', num_classes=num_classes, in_channels=width,
            feat_channels=width, stacked_convs=row['head_convs'], num_levels=num_levels,
            conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=dict(type='SiLU'),
            anchor_generator=dict(
                type='EfficientDetAnchorGenerator', aspect_ratios=ASPECT_RATIOS,
                octave_base_scale=row['anchor_scale'], scales_per_octave=3,
                strides=[2**level for level in range(min_level, max_level + 1)]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                            target_stds=[1.0] * 4),
            # automl: focal alpha 0.25 / gamma 1.5 over (num_pos + 1); Huber(delta=0.1) summed
            # over 4 coords / (4 * num_pos) x 50 == SmoothL1(beta=0.1) x 0.1 x 50 / 4 here.
            loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=1.5, alpha=0.25,
                          loss_weight=1.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=0.1, loss_weight=1.25)),
        train_cfg=dict(
            # ArgMaxMatcher(0.5, 0.5, force_match_for_each_row=True)
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                          min_pos_iou=0.0, gt_max_assign_all=False, ignore_iof_thr=-1),
            sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1,
            debug=False),
        test_cfg=dict(
            nms_pre=5000, min_bbox_size=0, score_thr=0.001,
            nms=dict(type='soft_nms', iou_threshold=0.5, sigma=0.5, method='gaussian',
                     min_score=0.001),
            max_per_img=100))


def efficientdet_coco_pipelines(variant: str = 'd0', backend_args: Optional[dict] = None):
    """automl's COCO train / test pipelines at the variant's input size.

    Training: horizontal flip, scale jitter 0.1-2.0 of the input size, random crop to it;
    both pad to exactly ``input_size`` (so the build-time 'SAME' pads apply) with the mean
    colour, because automl normalises before padding (its padding is 0 after normalisation).

    Args:
        variant (str): 'd0' .. 'd7', 'd7x'.
        backend_args (dict, optional): File backend of ``LoadImageFromFile``.

    Returns:
        tuple[list[dict], list[dict]]: ``(train_pipeline, test_pipeline)``.
    """
    size = efficientdet_variant(variant)['input_size']
    scale = (size, size)
    pad = dict(type='Pad', size=scale, pad_val=dict(img=tuple(MEAN[::-1])))  # BGR images
    train = [
        dict(type='LoadImageFromFile', backend_args=backend_args),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='RandomResize', scale=scale, ratio_range=(0.1, 2.0), keep_ratio=True),
        dict(type='RandomCrop', crop_size=scale, crop_type='absolute',
             allow_negative_crop=True),
        dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
        dict(type='RandomFlip', prob=0.5),
        pad,
        dict(type='PackDetInputs'),
    ]
    test = [
        dict(type='LoadImageFromFile', backend_args=backend_args),
        dict(type='Resize', scale=scale, keep_ratio=True),
        pad,
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                              'scale_factor')),
    ]
    return train, test
