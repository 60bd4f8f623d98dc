# ImageNet-1k at 224x224 with the crops of tensorflow/tpu's classification_parser.py: training
# takes a random crop of 8-100 % of the area, aspect 3/4-4/3 (10 attempts, else the central
# crop), resized to 224 bilinear, and flips; evaluation the central square of 0.875 of the short
# side resized to 224. Layout: data/imagenet/{train,val}/<wnid>/*.JPEG (one folder per class;
# or give ann_file='meta/train.txt' with "<path> <label>" lines, as mmpretrain's ImageNet).
dataset_type = 'ImageClassificationDataset'
data_root = 'data/imagenet/'
image_size = 224
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='InceptionCrop', size=image_size, scale=(0.08, 1.0), ratio=(3. / 4., 4. / 3.),
         max_attempts=10),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackClassificationInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CenterCropResize', size=image_size, crop_fraction=0.875),
    dict(type='PackClassificationInputs'),
]
train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='val', test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ClassificationAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
