# The classification demo's model in mmpretrain: mmpretrain's ImageClassifier / LinearClsHead
# around a small SpineNet-49S (0.35x filters, 64-channel endpoints) and the paper's neck, on
# our generated 6-class shapes dataset (ShapesClassificationDataset, registered into mmpretrain
# by mmdet_spine.classification.mmpretrain_models; generated under data/shapes_cls on first use).
# The same settings as configs/spinenet_cls/spinenet-49s-tiny_1xb32-10e_shapes-cls.py.
_base_ = './spinenet-49_32xb128-200e_in1k.py'
num_classes = 6
model = dict(
    data_preprocessor=dict(num_classes=num_classes),
    backbone=dict(arch='49S', filter_size_scale=0.35, endpoints_num_filters=64,
                  act_cfg=dict(type='ReLU'), drop_path_rate=0.0, zero_init_residual=True),
    head=dict(num_classes=num_classes, in_channels=64))
generate_cfg = dict(num_train_per_class=200, num_val_per_class=50, img_size=32, seed=0)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    _delete_=True, batch_size=32, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='ShapesClassificationDataset', data_root='data/shapes_cls/',
                 split='train', generate_cfg=generate_cfg, pipeline=train_pipeline))
val_dataloader = dict(
    _delete_=True, batch_size=50, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ShapesClassificationDataset', data_root='data/shapes_cls/',
                 split='val', generate_cfg=generate_cfg, pipeline=test_pipeline))
test_dataloader = val_dataloader
max_epochs = 10
optim_wrapper = dict(optimizer=dict(lr=0.1))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min_ratio=0.01, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
auto_scale_lr = dict(base_batch_size=32)
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1, save_best=None))
