# COCO instance segmentation with large-scale jitter at 1024x1024: coco_detection_lsj-1024.py
# loading masks too, evaluated on boxes and masks.
_base_ = './coco_detection_lsj-1024.py'
train_pipeline = [dict(t, with_mask=True) if t.type == 'LoadAnnotations' else t
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, with_mask=True) if t.type == 'LoadAnnotations' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator
