# EfficientDet-D3 on COCO (80 classes), automl's recipe.
# Every size and width comes from EFFICIENTDET_SCALING['d3']; nothing is copied here.
_base_ = ['../_base_/schedules/efficientdet_300e_coco_recipe.py']
from mmdet_spine.models.detectors.efficientdet_scaling import (efficientdet_coco_pipelines,
                                                               efficientdet_model_cfg)

model = efficientdet_model_cfg(
    'd3', num_classes=80,
    norm_cfg=dict(type='SyncBN', momentum=0.01, eps=1e-3, requires_grad=True))
train_pipeline, test_pipeline = efficientdet_coco_pipelines('d3')
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
