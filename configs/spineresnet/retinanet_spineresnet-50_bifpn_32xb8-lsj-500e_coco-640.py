# Baseline: SpineResNet-50 (C3-C5) + BiFPN (3 layers, 256 wide, P6/P7 added by the BiFPN) with
# the SpineNet RetinaNet head and recipe, next to SpineNet-49 + BiFPN.
_base_ = './retinanet_spineresnet-50_fpn_32xb8-lsj-500e_coco-640.py'
norm_cfg = dict(type='SyncBN', momentum=0.01, eps=1e-3, requires_grad=True)
model = dict(
    neck=dict(_delete_=True, type='BiFPN', in_channels=[512, 1024, 2048], out_channels=256,
              num_stages=3, start_level=0, num_outs=5, min_level=3, fusion='weighted',
              input_size=640, tf_same_padding=False, norm_cfg=norm_cfg,
              act_cfg=dict(type='SiLU')))
