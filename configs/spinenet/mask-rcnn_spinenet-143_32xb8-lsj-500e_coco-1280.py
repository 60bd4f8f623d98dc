# Mask R-CNN + SpineNet-143 at 1280 as TF Model Garden's
# official/vision/configs/experiments/maskrcnn/coco_spinenet143_mrcnn_tpu.yaml (box AP 49.3,
# mask AP 43.4 expected there): anchor_size 4.0 with 3 scales, input 1280, scale jitter
# 0.1-2.0, stochastic depth 0.2, weight decay 4e-5, 231,000 steps of 256 images (~500 epochs).
_base_ = [
    '../_base_/models/mask-rcnn_spinenet-49.py',
    '../_base_/datasets/coco_instance_lsj-1280.py',
    '../_base_/schedules/spinenet_sgd-500e.py',
]
model = dict(
    backbone=dict(arch='143'),
    rpn_head=dict(anchor_generator=dict(octave_base_scale=4)))
