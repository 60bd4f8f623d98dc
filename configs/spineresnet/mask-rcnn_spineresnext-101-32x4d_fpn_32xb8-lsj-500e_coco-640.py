# Mask R-CNN + ResNeXt-101 32x4d (SpineResNet with groups=32, base_width=4) + FPN on the SpineNet
# recipe, next to the R50 baseline.
_base_ = './mask-rcnn_spineresnet-50_fpn_32xb8-lsj-500e_coco-640.py'
model = dict(backbone=dict(depth=101, groups=32, base_width=4))
