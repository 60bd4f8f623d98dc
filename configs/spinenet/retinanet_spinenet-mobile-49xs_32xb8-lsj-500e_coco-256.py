# RetinaNet + SpineNet-Mobile-49XS:
# input 256 (not checked against a TF config: the ECCV paper's table as we recall it).
# As TF's mobile recipe: anchor size 3, swish, stochastic depth 0.2, weight decay 3e-5; the
# head's width is the endpoints' (24). TF's head uses separable convs; this one uses plain
# convs (RetinaSepBNActHead has no separable option), so it has more parameters than TF's.
_base_ = [
    '../_base_/models/retinanet_spinenet-49.py',
    '../_base_/datasets/coco_detection_lsj-256.py',
    '../_base_/schedules/spinenet_sgd-500e.py',
]
model = dict(
    backbone=dict(type='SpineNetMobile', arch='49XS'),
    bbox_head=dict(in_channels=24, feat_channels=24))
optim_wrapper = dict(optimizer=dict(weight_decay=3e-5))
