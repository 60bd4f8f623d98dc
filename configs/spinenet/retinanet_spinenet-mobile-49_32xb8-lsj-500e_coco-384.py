# RetinaNet + SpineNet-Mobile-49:
# input 384 and head 4 x 48 as TF Model Garden's coco_spinenet49_mobile_tpu.yaml.
# As TF's mobile recipe: anchor size 3, swish, stochastic depth 0.2, weight decay 3e-5; the
# head's width is the endpoints' (48). TF's head uses separable convs; this one uses plain
# convs (RetinaSepBNActHead has no separable option), so it has more parameters than TF's.
_base_ = [
    '../_base_/models/retinanet_spinenet-49.py',
    '../_base_/datasets/coco_detection_lsj-384.py',
    '../_base_/schedules/spinenet_sgd-500e.py',
]
model = dict(
    backbone=dict(type='SpineNetMobile', arch='49'),
    bbox_head=dict(in_channels=48, feat_channels=48))
optim_wrapper = dict(optimizer=dict(weight_decay=3e-5))
