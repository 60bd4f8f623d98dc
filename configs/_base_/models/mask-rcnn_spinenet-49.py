# Mask R-CNN + SpineNet-49 as in the paper (Du et al., CVPR 2020, arXiv 1912.05027) and TF
# Model Garden's `maskrcnn_spinenet_coco` (official/vision/configs/maskrcnn.py, heads in
# official/vision/modeling/heads/{dense_prediction_heads,instance_heads}.py): no neck
# (SpineNet outputs P3-P7 at 256 channels); an RPN with 1 conv shared over P3-P7 and a norm per
# level (RPNSepBNHead); RoIs pooled from P3-P6; a box head of 4 convs + 1 fc (1024) and a mask
# head of 4 convs + deconv, a norm and the activation after every conv / fc / deconv
# (NormActConvFCBBoxHead, NormActFCNMaskHead); SyncBN (eps 1e-3) and swish everywhere (the
# paper's recipe; TF's maskrcnn_spinenet_coco leaves the activation at its default relu, its
# cascadercnn_spinenet_coco sets swish).
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
norm_cfg = dict(type='SyncBN', momentum=0.01, eps=1e-3, requires_grad=True)
act_cfg = dict(type='SiLU')  # swish, one kernel (torch.nn.SiLU as mmcv registers it)
roi_strides = [8, 16, 32, 64]
model = dict(
    data_preprocessor=dict(pad_size_divisor=128),
    backbone=dict(
        _delete_=True, type='SpineNet', arch='49', min_level=3, max_level=7,
        norm_cfg=norm_cfg, act_cfg=act_cfg, drop_path_rate=0.2),
    neck=None,
    rpn_head=dict(
        type='RPNSepBNHead', num_ins=5, in_channels=256, feat_channels=256, num_convs=1,
        norm_cfg=norm_cfg, act_cfg=act_cfg,
        # TF (official/vision/ops/anchor.py): size 3 x stride x 2^(i/3), aspect ratios
        # 0.5/1/2 on every level, centred at (k + 0.5) x stride.
        anchor_generator=dict(
            _delete_=True, type='AnchorGenerator', octave_base_scale=3, scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128], center_offset=0.5)),
    roi_head=dict(
        # SingleRoIExtractor pooling in float32, so bf16 / fp16 AMP training works with
        # mmcv's RoIAlign (which has no bf16 kernel)
        bbox_roi_extractor=dict(type='Float32SingleRoIExtractor', out_channels=256,
                                featmap_strides=roi_strides),
        bbox_head=dict(type='NormActConvFCBBoxHead', num_shared_convs=4, num_shared_fcs=1,
                       in_channels=256, conv_out_channels=256, fc_out_channels=1024,
                       norm_cfg=norm_cfg, act_cfg=act_cfg),
        mask_roi_extractor=dict(type='Float32SingleRoIExtractor', out_channels=256,
                                featmap_strides=roi_strides),
        mask_head=dict(type='NormActFCNMaskHead', num_convs=4, in_channels=256,
                       conv_out_channels=256, norm_cfg=norm_cfg, act_cfg=act_cfg)))
