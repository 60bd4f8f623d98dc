# The generated shapes classification dataset (6 classes: circle, square, triangle, star,
# cross, ring; 32x32; 200 train / 50 val images a class), generated under data_root on first
# use. Already at the model's input size: no resizing; flips for training.
dataset_type = 'ShapesClassificationDataset'
data_root = 'data/shapes_cls/'
generate_cfg = dict(num_train_per_class=200, num_val_per_class=50, img_size=32, seed=0)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackClassificationInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackClassificationInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 generate_cfg=generate_cfg, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=50,
    num_workers=0,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', test_mode=True,
                 generate_cfg=generate_cfg, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ClassificationAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
