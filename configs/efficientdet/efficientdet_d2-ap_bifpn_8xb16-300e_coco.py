# EfficientDet-D2 for the Det-AdvProp + AutoAugment weights (Chen et al., "Robust and Accurate
# Object Detection via Adversarial Learning", CVPR 2021, arXiv 2103.13886; effdet's
# tf_efficientdet_d2_ap): the D2 model and recipe with the input those weights were trained
# on, RGB scaled to [-1, 1] after padding with black (INPUT_NORMALIZATIONS['advprop']).
# Evaluate or fine-tune the _ap weights with this config.
_base_ = ['./efficientdet_d2_bifpn_8xb16-300e_coco.py']
from mmdet_spine.models.detectors.efficientdet_scaling import (efficientdet_coco_pipelines,
                                                               efficientdet_model_cfg)

model = dict(data_preprocessor=efficientdet_model_cfg(
    'd2', input_norm='advprop')['data_preprocessor'])
train_pipeline, test_pipeline = efficientdet_coco_pipelines('d2', input_norm='advprop')
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
