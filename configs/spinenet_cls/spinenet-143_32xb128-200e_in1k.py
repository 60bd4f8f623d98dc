# SpineNet-143 ImageNet-1k classifier, the improved recipe (swish, stochastic depth 0.2, label
# smoothing 0.1) of tensorflow/tpu models/official/detection/configs/spinenet/
# spinenet143_classification.yaml: 224x224, 200 epochs, batch 4096, SGD 0.9, lr 1.6 cosine
# with a 5-epoch warm-up, weight decay 1e-4. Published top-1 in metafile.yml.
_base_ = [
    '../_base_/models/spinenet-49_cls.py',
    '../_base_/datasets/imagenet_cls-224.py',
    '../_base_/schedules/spinenet_cls_sgd-200e.py',
]
model = dict(backbone=dict(arch='143'), head=dict(in_channels=256))
