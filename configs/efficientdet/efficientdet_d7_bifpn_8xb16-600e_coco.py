# EfficientDet-D7 on COCO (80 classes), automl's recipe (600 epochs, as automl for D7/D7x).
# Every size and width comes from EFFICIENTDET_SCALING['d7']; nothing is copied here.
_base_ = ['../_base_/schedules/efficientdet_300e_coco_recipe.py']
from mmdet_spine.models.detectors.efficientdet_scaling import (efficientdet_coco_pipelines,
                                                               efficientdet_model_cfg)

model = efficientdet_model_cfg(
    'd7', num_classes=80,
    norm_cfg=dict(type='SyncBN', momentum=0.01, eps=1e-3, requires_grad=True))
train_pipeline, test_pipeline = efficientdet_coco_pipelines('d7')
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
max_epochs = 600
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs, T_max=max_epochs - 1,
         eta_min=0.0, convert_to_iter_based=True),
]
