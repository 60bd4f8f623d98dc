# google/automl's EfficientDet COCO recipe (Tan, Pang, Le, CVPR 2020, arXiv 1911.09070), shared
# by the efficientdet_d*_coco.py configs, which add the model and pipelines from the scaling
# table in mmdet_spine/models/detectors/efficientdet_scaling.py. Not a runnable config alone.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    '../default_runtime.py',
]

max_epochs = 300
# automl: batch 128 (here 8 GPUs x 16), lr 0.08 per 64 images, 1 warm-up epoch from 0.1x,
# cosine decay; SGD momentum 0.9; L2 4e-5 on conv kernels only; gradient clip 10; EMA 0.9998.
train_dataloader = dict(batch_size=16, num_workers=4, batch_sampler=None)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs, T_max=max_epochs - 1,
         eta_min=0.0, convert_to_iter_based=True),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.16, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=10, norm_type=2))
custom_hooks = [
    dict(type='FlushDenormalHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='EpochSeedHook'),
    dict(type='ChannelsLastHook'),
    dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=0.0002,
         update_buffers=True, priority=49),
]
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
auto_scale_lr = dict(enable=False, base_batch_size=128)
