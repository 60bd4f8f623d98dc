# COCO detection with large-scale jitter at 640x640 (the SpineNet recipe, as TF Model Garden's
# RetinaNet parser): resize the long side to 640 x U(0.1, 2.0), random 640x640 crop, flip,
# pad to 640x640. Test: long side to 640, pad to 640x640. The other sizes
# (coco_detection_lsj-<size>.py) derive these pipelines with their size.
_base_ = 'mmdet::_base_/datasets/coco_detection.py'
image_size = (640, 640)
ratio_range = (0.1, 2.0)
# Padding with the mean colour (BGR, images are loaded BGR) gives 0 after normalisation, as in
# TF, which pads the normalised image with zeros.
pad_val = dict(img=(104, 116, 124), masks=0, seg=255)

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=image_size, ratio_range=ratio_range, keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size,
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=image_size, pad_val=pad_val),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='Pad', size=image_size, pad_val=pad_val),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# 8 images per GPU; every image is padded to image_size, so no aspect-ratio grouping.
# RobustCocoDataset: clear errors for bad annotation files, counted skips for bad samples.
train_dataloader = dict(batch_size=8, num_workers=4, batch_sampler=None,
                        dataset=dict(type='RobustCocoDataset', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type='RobustCocoDataset', pipeline=test_pipeline))
test_dataloader = val_dataloader
