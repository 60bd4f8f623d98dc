# Mask R-CNN + SpineNet-143 at 1280. Anchor size 4 as the SpineNet-143 RetinaNet (the TF
# detection configs give no Mask R-CNN SpineNet-143 anchor size we could check).
_base_ = [
    '../_base_/models/mask-rcnn_spinenet-49.py',
    '../_base_/datasets/coco_instance_lsj-1280.py',
    '../_base_/schedules/spinenet_sgd-500e.py',
]
model = dict(
    backbone=dict(arch='143'),
    rpn_head=dict(anchor_generator=dict(octave_base_scale=4)))
