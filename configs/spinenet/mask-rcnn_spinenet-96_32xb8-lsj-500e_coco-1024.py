# Mask R-CNN + SpineNet-96 at 1024 (paper box / mask AP 47.2 / 41.5).
_base_ = [
    '../_base_/models/mask-rcnn_spinenet-49.py',
    '../_base_/datasets/coco_instance_lsj-1024.py',
    '../_base_/schedules/spinenet_sgd-500e.py',
]
model = dict(backbone=dict(arch='96'))
