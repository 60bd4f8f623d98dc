# Mask R-CNN + SpineNet-49 as in the paper (Du et al., CVPR 2020, arXiv 1912.05027) and the
# TF detection configs: no neck (SpineNet outputs P3-P7 at 256 channels), an RPN with one conv
# shared over P3-P7, RoIs pooled from P3-P6, a box head of 4 convs + 1 fc (1024) and a mask head
# of 4 convs, both with norms; swish + SyncBN in the backbone. mmdet's Mask R-CNN otherwise.
# Differences from TF kept on purpose: the RPN conv and the head convs have no norm / use ReLU
# (mmdet's RPNHead and RoI heads have no norm / act options there).
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
norm_cfg = dict(type='SyncBN', momentum=0.01, eps=1e-3, requires_grad=True)
act_cfg = dict(type='Swish')
roi_strides = [8, 16, 32, 64]
model = dict(
    data_preprocessor=dict(pad_size_divisor=128),
    backbone=dict(
        _delete_=True, type='SpineNet', arch='49', min_level=3, max_level=7,
        norm_cfg=norm_cfg, act_cfg=act_cfg, drop_path_rate=0.2),
    neck=None,
    rpn_head=dict(
        in_channels=256, feat_channels=256, num_convs=1,
        # TF: anchor size 3 (x stride), 3 scales x 3 ratios on every level.
        anchor_generator=dict(
            _delete_=True, type='AnchorGenerator', octave_base_scale=3, scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=256, featmap_strides=roi_strides),
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', in_channels=256, conv_out_channels=256,
                       fc_out_channels=1024, norm_cfg=norm_cfg),
        mask_roi_extractor=dict(out_channels=256, featmap_strides=roi_strides),
        mask_head=dict(num_convs=4, in_channels=256, conv_out_channels=256,
                       norm_cfg=norm_cfg)))
