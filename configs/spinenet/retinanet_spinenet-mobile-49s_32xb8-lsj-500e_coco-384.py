# RetinaNet + SpineNet-Mobile-49S as TF Model Garden's
# official/vision/configs/experiments/retinanet/coco_spinenet49s_mobile_tpu.yaml
# (experiment retinanet_mobile_coco; COCO mAP 23.5): the SpineNet-Mobile-49 recipe (input 384,
# hard_swish, separable head, weight decay 3e-5, jitter 0.5-2.0; see that config) with the 49S
# backbone and its 40-wide head (4 convs x 40, the endpoints' width).
_base_ = './retinanet_spinenet-mobile-49_32xb8-lsj-500e_coco-384.py'
model = dict(
    backbone=dict(arch='49S'),
    bbox_head=dict(in_channels=40, feat_channels=40))
