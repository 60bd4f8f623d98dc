# COCO detection with large-scale jitter at 1280x1280: coco_detection_lsj-640.py with every
# size-valued field (RandomResize/Resize scale, RandomCrop crop_size, Pad size) set to this size.
_base_ = './coco_detection_lsj-640.py'
image_size = (1280, 1280)
train_pipeline = [dict(t, **{k: image_size for k in ('scale', 'crop_size', 'size') if k in t})
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, **{k: image_size for k in ('scale', 'crop_size', 'size') if k in t})
                 for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
