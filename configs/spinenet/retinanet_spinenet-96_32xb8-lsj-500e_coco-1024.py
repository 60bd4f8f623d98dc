# RetinaNet + SpineNet-96 at 1024 (COCO test-dev AP 48.6).
_base_ = [
    '../_base_/models/retinanet_spinenet-49.py',
    '../_base_/datasets/coco_detection_lsj-1024.py',
    '../_base_/schedules/spinenet_sgd-500e.py',
]
model = dict(backbone=dict(arch='96'))
