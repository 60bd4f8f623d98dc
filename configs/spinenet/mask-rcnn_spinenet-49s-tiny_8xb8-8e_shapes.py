# Mask R-CNN + the demo's tiny SpineNet-49S (0.35x filters, 64-channel endpoints) trained from
# scratch on the generated shapes dataset with masks, on a CPU: every width 64, a 256-wide fc.
_base_ = [
    '../_base_/models/mask-rcnn_spinenet-49.py',
    '../_base_/datasets/shapes_instance.py',
    '../_base_/schedules/shapes_cpu.py',
    '../_base_/default_runtime.py',
]
norm_cfg = dict(type='BN', momentum=0.03, eps=1e-3, requires_grad=True)
act_cfg = dict(type='ReLU')
width = 64
model = dict(
    backbone=dict(arch='49S', filter_size_scale=0.35, endpoints_num_filters=width,
                  norm_cfg=norm_cfg, act_cfg=act_cfg, drop_path_rate=0.0),
    rpn_head=dict(in_channels=width, feat_channels=width, norm_cfg=norm_cfg, act_cfg=act_cfg),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(num_classes=3, in_channels=width, conv_out_channels=width,
                       fc_out_channels=256, norm_cfg=norm_cfg, act_cfg=act_cfg),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(num_classes=3, in_channels=width, conv_out_channels=width,
                       norm_cfg=norm_cfg, act_cfg=act_cfg)),
    # Few objects per image: 128 sampled RoIs (mmdet: 512) keep a CPU step quick.
    train_cfg=dict(rcnn=dict(sampler=dict(num=128))))
max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min_ratio=0.05, convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=1))
