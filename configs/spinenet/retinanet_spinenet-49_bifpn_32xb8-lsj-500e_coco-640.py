# Baseline: SpineNet-49 followed by a BiFPN (3 layers, 256 wide, fast normalized fusion) and
# the same RetinaNet head and recipe: does a BiFPN still help a scale-permuted backbone?
_base_ = './retinanet_spinenet-49_32xb8-lsj-500e_coco-640.py'
norm_cfg = dict(type='SyncBN', momentum=0.01, eps=1e-3, requires_grad=True)
model = dict(
    neck=dict(_delete_=True, type='BiFPN', in_channels=[256] * 5, out_channels=256, num_stages=3,
              start_level=0, num_outs=5, min_level=3, fusion='weighted', input_size=640,
              tf_same_padding=False, norm_cfg=norm_cfg, act_cfg=dict(type='SiLU')))
