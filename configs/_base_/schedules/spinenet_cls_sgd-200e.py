# The SpineNet ImageNet schedule of tensorflow/tpu models/official/detection/configs/spinenet/
# spinenet49_classification.yaml (and classification_config.py): 200 epochs (62,557 steps of
# 4,096 images), SGD momentum 0.9, lr 1.6 for 4,096 images (0.1 per 256) after a linear
# warm-up from 0 over 1,564 steps (5 epochs), cosine decay to 0, L2 weight decay 1e-4 on
# conv/fc kernels only (TF's regularization_variable_regex '.*(kernel|weight):0$').
# Batch 4,096 = 32 GPUs x 128; at other batch sizes run tools/train.py --auto-scale-lr.
_base_ = '../default_runtime.py'
max_epochs = 200
warmup_epochs = 5
lr = 1.6
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    # from ~0 (TF starts at 0; mmengine's LinearLR needs a factor > 0)
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=warmup_epochs, end=max_epochs,
         T_max=max_epochs - warmup_epochs, eta_min=0.0, convert_to_iter_based=True),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=lr, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
auto_scale_lr = dict(enable=False, base_batch_size=4096)
default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=3, save_best='accuracy/top1',
                                     rule='greater'))
