# EfficientDet-Lite2 on COCO (80 classes), automl's default recipe (automl does not publish a
# separate one for the Lite models). Every size and width, the ReLU6 activation and the [-1, 1]
# input scaling come from EFFICIENTDET_SCALING['lite2']; nothing is copied here.
_base_ = ['../_base_/schedules/efficientdet_300e_coco_recipe.py']
from mmdet_spine.models.detectors.efficientdet_scaling import (efficientdet_coco_pipelines,
                                                               efficientdet_model_cfg)

model = efficientdet_model_cfg(
    'lite2', num_classes=80,
    norm_cfg=dict(type='SyncBN', momentum=0.01, eps=1e-3, requires_grad=True))
train_pipeline, test_pipeline = efficientdet_coco_pipelines('lite2')
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
