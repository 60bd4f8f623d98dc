# RetinaNet + SpineNet-49 at 640, the paper's recipe (COCO test-dev AP 44.3).
_base_ = [
    '../_base_/models/retinanet_spinenet-49.py',
    '../_base_/datasets/coco_detection_lsj-640.py',
    '../_base_/schedules/spinenet_sgd-500e.py',
]
