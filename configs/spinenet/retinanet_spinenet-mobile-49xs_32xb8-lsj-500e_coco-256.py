# RetinaNet + SpineNet-Mobile-49XS as TF Model Garden's
# official/vision/configs/experiments/retinanet/coco_spinenet49xs_mobile_tpu.yaml
# (experiment retinanet_mobile_coco): input 256x256, no decoder, head 4 convs x 24 (the endpoints'
# width), anchor size 3 with 3 scales x ratios 0.5/1/2, activation swish, SyncBN (momentum 0.99,
# eps 1e-3), stochastic depth 0.2, SE ratio 0.2, weight decay 3e-5, scale jitter 0.5-2.0 + flip,
# lr 0.32 per 256 images with a 2000-step warm-up from 0.0067. The head is TF's separable one
# (use_separable_conv: depthwise 3x3 + pointwise 1x1 with bias, BN per level; parameters and
# converted outputs equal TF's, tests/test_models/test_spinenet_mobile_tf_parity.py). Kept
# different: TF trains 277,200 steps of 256 images (~600 epochs, steps at ~570 / ~590); this
# config keeps the 500-epoch SpineNet schedule its name states.
_base_ = [
    '../_base_/models/retinanet_spinenet-49.py',
    '../_base_/datasets/coco_detection_lsj-256.py',
    '../_base_/schedules/spinenet_sgd-500e.py',
]
act_cfg = dict(type='SiLU')  # swish, one kernel (torch.nn.SiLU as mmcv registers it)
model = dict(
    backbone=dict(type='SpineNetMobile', arch='49XS', act_cfg=act_cfg),
    bbox_head=dict(in_channels=24, feat_channels=24, act_cfg=act_cfg, separable=True))
optim_wrapper = dict(optimizer=dict(weight_decay=3e-5))
# TF mobile recipe: scale jitter 0.5-2.0 (aug_scale_min / aug_scale_max), not 0.1-2.0.
train_pipeline = [dict(t, ratio_range=(0.5, 2.0)) if t['type'] == 'RandomResize' else t
                  for t in _base_.train_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
