# The paper's ResNet-50-FPN Mask R-CNN baseline on the SpineNet recipe: mask-rcnn_spinenet-49.py
# (same RPN, RoI heads on P3-P6) with SpineResNet-50 (C3-C5, swish, SyncBN, stochastic depth,
# from scratch) and an FPN to P3-P7.
_base_ = './mask-rcnn_spinenet-49.py'
model = dict(
    backbone=dict(
        _delete_=True, type='SpineResNet', depth=50, out_indices=(1, 2, 3), frozen_stages=-1,
        norm_cfg={{_base_.norm_cfg}}, act_cfg={{_base_.act_cfg}}, norm_eval=False,
        drop_path_rate=0.2),
    neck=dict(
        _delete_=True, type='FPN', in_channels=[512, 1024, 2048], out_channels=256, start_level=0,
        add_extra_convs='on_output', relu_before_extra_convs=True, num_outs=5,
        norm_cfg={{_base_.norm_cfg}}))
