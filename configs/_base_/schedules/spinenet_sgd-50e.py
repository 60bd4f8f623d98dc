# The SpineNet recipe shortened to 50 epochs: the same warm-up and steps at the same fractions
# (95% / 98%; 47.5 rounded down to a whole epoch).
_base_ = './spinenet_sgd-500e.py'
max_epochs = 50
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=_base_.warmup_lr / _base_.lr, by_epoch=False,
         begin=0, end=_base_.warmup_iters),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[47, 49],
         gamma=0.1, convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=5))
