# RetinaNet + ResNet-50-FPN at 640 on the SpineNet recipe shortened to 50 epochs.
_base_ = [
    '../_base_/models/retinanet_spineresnet-50_fpn.py',
    '../_base_/datasets/coco_detection_lsj-640.py',
    '../_base_/schedules/spinenet_sgd-50e.py',
]
