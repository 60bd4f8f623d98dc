# SpineNet-49 iNaturalist-2017 classifier (5,089 classes) with the improved ImageNet recipe of
# tensorflow/tpu models/official/detection/configs/spinenet/spinenet49_classification.yaml
# (tensorflow/tpu MODEL_ZOO.md: "All models are trained from scratch for 200 epochs with cosine
# learning rate decay and batch size 4096"; the iNaturalist table uses the same settings).
_base_ = [
    '../_base_/models/spinenet-49_cls.py',
    '../_base_/datasets/inat2017_cls-224.py',
    '../_base_/schedules/spinenet_cls_sgd-200e.py',
]
model = dict(head=dict(num_classes=5089))
