# Mask R-CNN + SpineNet-49 at 640 on the recipe shortened to 50 epochs.
_base_ = [
    '../_base_/models/mask-rcnn_spinenet-49.py',
    '../_base_/datasets/coco_instance_lsj-640.py',
    '../_base_/schedules/spinenet_sgd-50e.py',
]
