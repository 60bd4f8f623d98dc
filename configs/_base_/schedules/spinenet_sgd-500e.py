# The SpineNet COCO recipe (Du et al., CVPR 2020, arXiv 1912.05027; TF Model Garden
# `retinanet_spinenet_coco`), trained from scratch: 256 images a batch (e.g. 32 GPUs x 8),
# SGD momentum 0.9, lr 0.32 per 256 images after a 2000-iteration linear warm-up from 0.0067,
# x0.1 at epochs 475 and 490 of 500, weight decay 4e-5 on conv/fc weights only.
# The warm-up is counted in iterations of 256 images; at other batch sizes run
# tools/train.py --auto-scale-lr (lr x batch / 256). Includes the default runtime (checkpoint
# interval).
_base_ = '../default_runtime.py'
max_epochs = 500
lr = 0.32
warmup_lr = 0.0067
warmup_iters = 2000
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=warmup_lr / lr, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[475, 490],
         gamma=0.1, convert_to_iter_based=True),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=lr, momentum=0.9, weight_decay=4e-5),
    # No decay on norms and biases. bypass_duplicate: the RetinaNet head shares its tower
    # convs across levels, so the same parameter is reached from several modules.
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, bypass_duplicate=True))
auto_scale_lr = dict(enable=False, base_batch_size=256)
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
