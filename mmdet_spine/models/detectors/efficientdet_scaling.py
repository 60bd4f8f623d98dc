"""EfficientDet D0-D7x and EfficientDet-Lite0-4: the one scaling table, and the model configs
derived from it.

Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object Detection", CVPR 2020,
https://arxiv.org/abs/1911.09070. The D rows are google/automl's ``efficientdet_model_param_dict``
(which rwightman's effdet mirrors), not the paper's formulas: from D5 on the released models
depart from ``W = 64 * 1.35**phi``, ``D = 3 + phi``, ``R = 512 + 128 * phi``. The Lite rows are
automl's ``efficientdet_lite_param_dict`` as effdet 0.4.1 ports them (``tf_efficientdet_lite*``
in ``effdet/config/model_config.py``): EfficientNet-Lite backbones, ReLU6, unweighted BiFPN
fusion, anchor scale 3 (4 for Lite3 / Lite4) and inputs 320-640.
"""
import copy
from typing import List, Optional, Tuple, Union

from mmengine.config import ConfigDict

from mmdet_spine.errors import ConfigError

from ..layers.config_checks import (FLAG, POSITIVE_INT, RATE, Each, OrNone, check_choice,
                                    check_fields)

#: variant -> input size, EfficientNet arch, BiFPN width / stages, head repeats, anchor scale,
#: fusion, pyramid levels, backbone drop-connect rate (automl turns it off for D0's B0, effdet
#: for Lite0), BiFPN / head activation, input normalisation (:data:`INPUT_NORMALIZATIONS`).
EFFICIENTDET_SCALING = {
    'd0': dict(input_size=512, backbone='b0', bifpn_channels=64, bifpn_stages=3, head_convs=3,
               anchor_scale=4.0, fusion='weighted', levels=(3, 7), drop_path_rate=0.0,
               act='SiLU', input_norm='imagenet'),
    'd1': dict(input_size=640, backbone='b1', bifpn_channels=88, bifpn_stages=4, head_convs=3,
               anchor_scale=4.0, fusion='weighted', levels=(3, 7), drop_path_rate=0.2,
               act='SiLU', input_norm='imagenet'),
    'd2': dict(input_size=768, backbone='b2', bifpn_channels=112, bifpn_stages=5, head_convs=3,
               anchor_scale=4.0, fusion='weighted', levels=(3, 7), drop_path_rate=0.2,
               act='SiLU', input_norm='imagenet'),
    'd3': dict(input_size=896, backbone='b3', bifpn_channels=160, bifpn_stages=6, head_convs=4,
               anchor_scale=4.0, fusion='weighted', levels=(3, 7), drop_path_rate=0.2,
               act='SiLU', input_norm='imagenet'),
    'd4': dict(input_size=1024, backbone='b4', bifpn_channels=224, bifpn_stages=7, head_convs=4,
               anchor_scale=4.0, fusion='weighted', levels=(3, 7), drop_path_rate=0.2,
               act='SiLU', input_norm='imagenet'),
    'd5': dict(input_size=1280, backbone='b5', bifpn_channels=288, bifpn_stages=7, head_convs=4,
               anchor_scale=4.0, fusion='weighted', levels=(3, 7), drop_path_rate=0.2,
               act='SiLU', input_norm='imagenet'),
    'd6': dict(input_size=1280, backbone='b6', bifpn_channels=384, bifpn_stages=8, head_convs=5,
               anchor_scale=4.0, fusion='sum', levels=(3, 7), drop_path_rate=0.2,
               act='SiLU', input_norm='imagenet'),
    'd7': dict(input_size=1536, backbone='b6', bifpn_channels=384, bifpn_stages=8, head_convs=5,
               anchor_scale=5.0, fusion='sum', levels=(3, 7), drop_path_rate=0.2,
               act='SiLU', input_norm='imagenet'),
    'd7x': dict(input_size=1536, backbone='b7', bifpn_channels=384, bifpn_stages=8,
                head_convs=5, anchor_scale=4.0, fusion='sum', levels=(3, 8),
                drop_path_rate=0.2, act='SiLU', input_norm='imagenet'),
    'lite0': dict(input_size=320, backbone='lite0', bifpn_channels=64, bifpn_stages=3,
                  head_convs=3, anchor_scale=3.0, fusion='sum', levels=(3, 7),
                  drop_path_rate=0.0, act='ReLU6', input_norm='lite'),
    'lite1': dict(input_size=384, backbone='lite1', bifpn_channels=88, bifpn_stages=4,
                  head_convs=3, anchor_scale=3.0, fusion='sum', levels=(3, 7),
                  drop_path_rate=0.2, act='ReLU6', input_norm='lite'),
    'lite2': dict(input_size=448, backbone='lite2', bifpn_channels=112, bifpn_stages=5,
                  head_convs=3, anchor_scale=3.0, fusion='sum', levels=(3, 7),
                  drop_path_rate=0.2, act='ReLU6', input_norm='lite'),
    'lite3': dict(input_size=512, backbone='lite3', bifpn_channels=160, bifpn_stages=6,
                  head_convs=4, anchor_scale=4.0, fusion='sum', levels=(3, 7),
                  drop_path_rate=0.2, act='ReLU6', input_norm='lite'),
    'lite3x': dict(input_size=640, backbone='lite3', bifpn_channels=200, bifpn_stages=6,
                   head_convs=4, anchor_scale=3.0, fusion='sum', levels=(3, 7),
                   drop_path_rate=0.2, act='ReLU6', input_norm='lite'),
    'lite4': dict(input_size=640, backbone='lite4', bifpn_channels=224, bifpn_stages=7,
                  head_convs=4, anchor_scale=4.0, fusion='sum', levels=(3, 7),
                  drop_path_rate=0.2, act='ReLU6', input_norm='lite'),
}

#: Anchor (width, height) factors of the released checkpoints (automl before 2020-09-10).
ASPECT_RATIOS = ((1.0, 1.0), (1.4, 0.7), (0.7, 1.4))
#: TF's batch norm: decay 0.99 (PyTorch momentum 0.01), epsilon 1e-3.
BN_CFG = dict(type='BN', momentum=0.01, eps=1e-3, requires_grad=True)
#: ImageNet mean / std in 0-255 RGB.
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
#: How the input of each family of released weights is normalised (0-255 RGB mean / std) and
#: what colour (RGB) pads it to the input size:
#:
#: - ``imagenet``: D0-D7x. automl normalises, then pads with 0, i.e. with the mean colour.
#: - ``lite``: EfficientDet-Lite, to [-1, 1] as effdet 0.4.1 (``mean = std = 0.5 * 255``, pad
#:   with the mean; automl's Lite configs say ``mean_rgb=127, stddev_rgb=128``).
#: - ``advprop``: Det-AdvProp + AutoAugment weights (effdet ``tf_efficientdet_d*_ap``: mean =
#:   std = 0.5 * 255, ``fill_color=0``). automl pads the raw image with 0 (black), then scales
#:   it to [-1, 1] (``scale_range=True``), so the padding is -1 after normalisation.
INPUT_NORMALIZATIONS = {
    'imagenet': dict(mean=MEAN, std=STD, pad_rgb=tuple(MEAN)),
    'lite': dict(mean=[127.5] * 3, std=[127.5] * 3, pad_rgb=(127.5, ) * 3),
    'advprop': dict(mean=[127.5] * 3, std=[127.5] * 3, pad_rgb=(0.0, ) * 3),
}
#: Backbone stages whose outputs feed the BiFPN (strides 8, 16, 32).
BACKBONE_OUT_INDICES = (2, 4, 6)

_MODEL_CFG_RULES = dict(num_classes=POSITIVE_INT, tf_same_padding=FLAG, with_cp=FLAG,
                        drop_path_rate=OrNone(RATE),
                        input_size=OrNone(Each(POSITIVE_INT, length=2, scalar_ok=True)))


def efficientdet_variant(variant: str) -> dict:
    """A copy of the scaling row of ``variant`` ('d0' .. 'd7', 'd7x', 'lite0' .. 'lite4',
    'lite3x'); unknown names fail."""
    key = str(variant).lower().replace('efficientdet_', '').replace('efficientdet-', '')
    if key not in EFFICIENTDET_SCALING:
        raise KeyError(f'variant={variant!r} is not an EfficientDet; valid choices: '
                       f"{', '.join(EFFICIENTDET_SCALING)}")
    return copy.deepcopy(EFFICIENTDET_SCALING[key])


def _row(variant: str) -> dict:
    """:func:`efficientdet_variant`, failing with a :class:`ConfigError` (one line in the
    tools) for configs."""
    try:
        return efficientdet_variant(variant)
    except KeyError as e:
        raise ConfigError(f'efficientdet_model_cfg: {e.args[0]}') from None


def size_divisor(variant: str) -> int:
    """What every input side of ``variant`` must be a multiple of.

    ``2**max_level`` (128; 256 for D7x), so that every pyramid level halves the one below
    exactly, unless the released model's own input is not such a multiple: Lite0 (320) and
    Lite2 (448) take the largest power of two that divides their input (64); their top
    levels are then rounded up as TF 'SAME' rounds them (320 px: P6 5x5, P7 3x3), with anchor
    strides ``input / level size`` (automl's and effdet's anchors).
    """
    row = _row(variant)
    size = row['input_size']
    return min(2**row['levels'][1], size & -size)


def anchor_strides(input_size: Tuple[int, int], min_level: int,
                   max_level: int) -> List[Union[int, float, tuple]]:
    """Anchor stride of each level: ``input / level size`` (effdet's and automl's
    ``Anchors``); ``2**level`` for sizes that are multiples of ``2**max_level``."""
    from ..necks.bifpn import level_sizes
    strides = []
    for (h, w) in level_sizes(input_size, min_level, max_level - min_level + 1):
        sh, sw = input_size[0] / h, input_size[1] / w
        sh, sw = [int(s) if float(s).is_integer() else s for s in (sh, sw)]
        strides.append(sh if sh == sw else (sw, sh))  # mmdet: (w, h)
    return strides


def efficientdet_model_cfg(variant: str = 'd0',
                           num_classes: int = 90,
                           input_size: Optional[Union[int, Tuple[int, int]]] = None,
                           tf_same_padding: bool = True,
                           norm_cfg: Optional[dict] = None,
                           drop_path_rate: Optional[float] = None,
                           with_cp: bool = False,
                           input_norm: Optional[str] = None) -> dict:
    """The mmdet ``model`` dict of an EfficientDet variant, built from :data:`EFFICIENTDET_SCALING`.

    Args:
        variant (str): 'd0' .. 'd7', 'd7x', 'lite0' .. 'lite4', 'lite3x'.
        num_classes (int): Classes, >= 1; 90 for COCO with its original category ids (as the
            released checkpoints), 80 for mmdet's contiguous COCO labels. Default: 90.
        input_size (int | tuple, optional): Fixed (H, W) input; default the variant's. Each
            side must be a multiple of :func:`size_divisor` (128 for most variants, 256 for
            D7x, 64 for Lite0 / Lite2).
        tf_same_padding (bool): TF 'SAME' padding with pads fixed at build time. Default: True.
        norm_cfg (dict, optional): Norm everywhere; default BN with TF's momentum / eps (use
            ``type='SyncBN'`` for multi-GPU training).
        drop_path_rate (float, optional): Backbone drop-connect in [0, 1); default the
            variant's.
        with_cp (bool): Gradient checkpointing in the backbone. Default: False.
        input_norm (str, optional): Input normalisation, a key of
            :data:`INPUT_NORMALIZATIONS`; default the variant's (``'advprop'`` for the
            Det-AdvProp weights of D0-D5).

    Returns:
        ConfigDict: ``type='EfficientDet'`` with data_preprocessor, backbone, neck, bbox_head,
        train_cfg and test_cfg.

    Raises:
        ConfigError: An unknown variant or normalisation, or a value out of its range.
    """
    owner = 'efficientdet_model_cfg'
    row = _row(variant)
    check_fields(owner, _MODEL_CFG_RULES, dict(
        num_classes=num_classes, tf_same_padding=tf_same_padding, with_cp=with_cp,
        drop_path_rate=drop_path_rate, input_size=input_size))
    norm = INPUT_NORMALIZATIONS[check_choice(
        owner, 'input_norm', row['input_norm'] if input_norm is None else input_norm,
        tuple(INPUT_NORMALIZATIONS), 'an input normalisation')]
    size = row['input_size'] if input_size is None else input_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    divisor = size_divisor(variant)
    norm_cfg = copy.deepcopy(norm_cfg or BN_CFG)
    min_level, max_level = row['levels']
    num_levels = max_level - min_level + 1
    width = row['bifpn_channels']
    act_cfg = dict(type=row['act'])
    from ..backbones.tf_efficientnet import TFEfficientNet, stage_channels
    channels = stage_channels(TFEfficientNet.arch_settings[row['backbone']])
    backbone_channels = [channels[i] for i in BACKBONE_OUT_INDICES]
    conv_cfg = dict(type='Conv2dTFSame') if tf_same_padding else None
    return ConfigDict(
        type='EfficientDet',
        data_preprocessor=dict(
            type='DetDataPreprocessor', mean=list(norm['mean']), std=list(norm['std']),
            bgr_to_rgb=True, pad_size_divisor=divisor),
        backbone=dict(
            type='TFEfficientNet', arch=row['backbone'], out_indices=BACKBONE_OUT_INDICES,
            drop_path_rate=(row['drop_path_rate'] if drop_path_rate is None
                            else drop_path_rate),
            tf_same_padding=tf_same_padding, input_size=size, norm_cfg=norm_cfg,
            act_cfg=act_cfg, with_cp=with_cp),
        neck=dict(
            type='BiFPN', in_channels=backbone_channels, out_channels=width,
            num_stages=row['bifpn_stages'], start_level=0, num_outs=num_levels,
            min_level=min_level, fusion=row['fusion'], input_size=size,
            **({} if divisor == 2**max_level else dict(size_divisor=divisor)),
            tf_same_padding=tf_same_padding, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
            act_cfg=act_cfg),
        bbox_head=dict(
            type='EfficientDetSepBNHead', num_classes=num_classes, in_channels=width,
            feat_channels=width, stacked_convs=row['head_convs'], num_levels=num_levels,
            conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg,
            anchor_generator=dict(
                type='EfficientDetAnchorGenerator', aspect_ratios=ASPECT_RATIOS,
                octave_base_scale=row['anchor_scale'], scales_per_octave=3,
                strides=anchor_strides(size, min_level, max_level)),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                            target_stds=[1.0] * 4),
            # automl: focal alpha 0.25 / gamma 1.5 over (num_pos + 1); Huber(delta=0.1) summed
            # over 4 coords / (4 * num_pos) x 50 == SmoothL1(beta=0.1) x 0.1 x 50 / 4 here.
            # FusedFocalLoss: mmdet's FocalLoss with a fused CPU forward/backward.
            loss_cls=dict(type='FusedFocalLoss', use_sigmoid=True, gamma=1.5, alpha=0.25,
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


def efficientdet_coco_pipelines(variant: str = 'd0', backend_args: Optional[dict] = None,
                                input_norm: Optional[str] = None):
    """automl's COCO train / test pipelines at the variant's input size.

    Training: horizontal flip, scale jitter 0.1-2.0 of the input size, random crop to it;
    both pad to exactly ``input_size`` (so the build-time 'SAME' pads apply) with the colour
    of the variant's :data:`INPUT_NORMALIZATIONS` (the mean for D0-D7x and Lite, because
    automl normalises before padding; black for the Det-AdvProp weights).

    Args:
        variant (str): 'd0' .. 'd7', 'd7x', 'lite0' .. 'lite4', 'lite3x'.
        backend_args (dict, optional): File backend of ``LoadImageFromFile``.
        input_norm (str, optional): Key of :data:`INPUT_NORMALIZATIONS`; default the
            variant's.

    Returns:
        tuple[list[dict], list[dict]]: ``(train_pipeline, test_pipeline)``.
    """
    row = _row(variant)
    norm = INPUT_NORMALIZATIONS[check_choice(
        'efficientdet_coco_pipelines', 'input_norm',
        row['input_norm'] if input_norm is None else input_norm, tuple(INPUT_NORMALIZATIONS),
        'an input normalisation')]
    size = row['input_size']
    scale = (size, size)
    pad = dict(type='Pad', size=scale, pad_val=dict(img=tuple(norm['pad_rgb'][::-1])))  # BGR
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
