# RetinaNet + SpineNet-49 as in the paper / TF Model Garden `retinanet_spinenet_coco`:
# no neck (SpineNet outputs P3-P7 at 256 channels), shared tower convs with a BN per level,
# swish, 9 anchors (3 scales x 3 ratios) of size 3 x stride, focal loss (alpha 0.25, gamma 1.5)
# and a Huber box loss (delta 0.1, weight 50 over 4 * num_pos == SmoothL1(beta=0.1) x 1.25).
norm_cfg = dict(type='SyncBN', momentum=0.01, eps=1e-3, requires_grad=True)
act_cfg = dict(type='SiLU')  # swish, one kernel (torch.nn.SiLU as mmcv registers it)
model = dict(
    type='RetinaNet',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_size_divisor=128),
    backbone=dict(
        type='SpineNet', arch='49', min_level=3, max_level=7, norm_cfg=norm_cfg,
        act_cfg=act_cfg, drop_path_rate=0.2),
    neck=None,
    bbox_head=dict(
        type='RetinaSepBNActHead', num_classes=80, num_ins=5, in_channels=256,
        stacked_convs=4, feat_channels=256, norm_cfg=norm_cfg, act_cfg=act_cfg,
        # TF's anchors (official/vision/ops/anchor.py): size 3 x stride x 2^(i/3), aspect
        # ratios 0.5/1/2, centred at (k + 0.5) x stride -> center_offset=0.5. TF orders them
        # scale-major with width/height ratios; mmdet's default order is kept here and
        # tools/model_converters/spinenet_tf2mmdet.py permutes converted TF weights to it.
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=3, scales_per_octave=3,
                              ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128],
                              center_offset=0.5),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='FusedFocalLoss', use_sigmoid=True, gamma=1.5, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=0.1, loss_weight=1.25)),
    train_cfg=dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0,
                      ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
