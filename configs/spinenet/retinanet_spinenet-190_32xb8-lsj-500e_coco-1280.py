# RetinaNet + SpineNet-190 at 1280 (COCO test-dev AP 52.1): 512-channel endpoints, a head of
# 7 convs x 512, anchor size 4.
_base_ = [
    '../_base_/models/retinanet_spinenet-49.py',
    '../_base_/datasets/coco_detection_lsj-1280.py',
    '../_base_/schedules/spinenet_sgd-500e.py',
]
model = dict(
    backbone=dict(arch='190'),
    bbox_head=dict(in_channels=512, feat_channels=512, stacked_convs=7,
                   anchor_generator=dict(octave_base_scale=4)))
