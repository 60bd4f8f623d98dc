# The classification demo (make demo-cls): a SpineNet-49S with 0.35x filters and 64-channel
# endpoints (SpineNet-49S block specs and resampling, smaller width) + the paper's
# pyramid-averaging neck + a linear head with label smoothing 0.1, trained from scratch on the
# generated 6-class shapes dataset (32x32) on a CPU. ReLU, no stochastic depth (too short a
# schedule to need it), zero-initialised residual branches and BN momentum 0.1 (PyTorch's
# default; TF's 0.99 is for 100k-step schedules) for a fast start from scratch.
_base_ = [
    '../_base_/models/spinenet-49_cls.py',
    '../_base_/datasets/shapes_cls.py',
    '../_base_/default_runtime.py',
]
norm_cfg = dict(type='BN', momentum=0.1, eps=1e-5, requires_grad=True)
model = dict(
    backbone=dict(arch='49S', filter_size_scale=0.35, endpoints_num_filters=64,
                  norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'), drop_path_rate=0.0,
                  zero_init_residual=True),
    head=dict(num_classes=6, in_channels=64, label_smoothing=0.1))
max_epochs = 10
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min_ratio=0.01, convert_to_iter_based=True),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
auto_scale_lr = dict(enable=False, base_batch_size=32)
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
