# RetinaNet + SpineNet-143 at 1280 (COCO test-dev AP 50.7): anchor size 4.
_base_ = [
    '../_base_/models/retinanet_spinenet-49.py',
    '../_base_/datasets/coco_detection_lsj-1280.py',
    '../_base_/schedules/spinenet_sgd-500e.py',
]
model = dict(
    backbone=dict(arch='143'),
    bbox_head=dict(anchor_generator=dict(octave_base_scale=4)))
