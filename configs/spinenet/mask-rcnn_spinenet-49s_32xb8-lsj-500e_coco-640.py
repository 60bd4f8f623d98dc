# Mask R-CNN + SpineNet-49S at 640 (paper box / mask AP 39.3 / 34.8): everything 128 wide
# except the box head's fc (1024).
_base_ = [
    '../_base_/models/mask-rcnn_spinenet-49.py',
    '../_base_/datasets/coco_instance_lsj-640.py',
    '../_base_/schedules/spinenet_sgd-500e.py',
]
width = 128
model = dict(
    backbone=dict(arch='49S'),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, conv_out_channels=width),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width)))
