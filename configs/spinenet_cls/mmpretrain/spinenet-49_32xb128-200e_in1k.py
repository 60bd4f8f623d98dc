# SpineNet-49 ImageNet-1k classifier for mmpretrain users: mmpretrain's ImageClassifier and
# LinearClsHead around our SpineNet backbone and the paper's neck (P3-P7 upsampled to P3,
# averaged, pooled), with the improved recipe of tensorflow/tpu
# models/official/detection/configs/spinenet/spinenet49_classification.yaml: swish,
# stochastic depth 0.2, label smoothing 0.1, 224x224, 200 epochs, batch 4096 (32 GPUs x 128),
# SGD 0.9, lr 1.6 cosine after a 5-epoch linear warm-up, weight decay 1e-4 (not on norms and
# biases). mmpretrain's crops stand in for TF's (RandomResizedCrop 8-100 % / 3:4-4:3; resize the
# short side to 256, centre crop 224). Train with mmpretrain's tools/train.py (or mim train).
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmdet_spine.classification.mmpretrain_models'],
                      allow_failed_imports=False)

num_classes = 1000
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor', num_classes=num_classes,
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True),
    backbone=dict(
        type='SpineNet', arch='49', min_level=3, max_level=7,
        norm_cfg=dict(type='BN', momentum=0.1, eps=1e-5, requires_grad=True),
        act_cfg=dict(type='SiLU'), drop_path_rate=0.2),
    neck=dict(type='PyramidAveragePooling', aggregation='all'),
    head=dict(
        type='LinearClsHead', num_classes=num_classes, in_channels=256,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5), init_cfg=dict(type='Normal', layer='Linear', std=0.01)))

dataset_type = 'ImageNet'
data_root = 'data/imagenet'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.08, 1.0),
         aspect_ratio_range=(3. / 4., 4. / 3.), max_attempts=10, interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', interpolation='bilinear'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=128, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

max_epochs = 200
warmup_epochs = 5
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=1.6, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=warmup_epochs, end=max_epochs,
         T_max=max_epochs - warmup_epochs, eta_min=0.0, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=4096)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3,
                    save_best='accuracy/top1', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)
