# SpineNet-96 ImageNet-1k classifier for mmpretrain users, the recipe of tensorflow/tpu
# models/official/detection/configs/spinenet/spinenet96_classification.yaml (as the SpineNet-49
# config, which it inherits: only the backbone differs).
_base_ = './spinenet-49_32xb128-200e_in1k.py'
model = dict(backbone=dict(arch='96'), head=dict(in_channels=256))
