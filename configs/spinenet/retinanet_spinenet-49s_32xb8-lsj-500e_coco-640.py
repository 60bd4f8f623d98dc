# RetinaNet + SpineNet-49S at 640 (COCO test-dev AP 41.5): 128-channel endpoints and head.
_base_ = [
    '../_base_/models/retinanet_spinenet-49.py',
    '../_base_/datasets/coco_detection_lsj-640.py',
    '../_base_/schedules/spinenet_sgd-500e.py',
]
model = dict(
    backbone=dict(arch='49S'),
    bbox_head=dict(in_channels=128, feat_channels=128))
