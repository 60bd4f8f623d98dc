# EfficientDet-D0 (every width and depth from EFFICIENTDET_SCALING['d0']) at 256 px on the
# generated shapes dataset, trained from scratch on a CPU. Plain BN, symmetric padding.
_base_ = [
    '../_base_/datasets/shapes_detection.py',
    '../_base_/schedules/shapes_cpu.py',
    '../_base_/default_runtime.py',
]
from mmdet_spine.models.detectors.efficientdet_scaling import efficientdet_model_cfg

model = efficientdet_model_cfg(
    'd0', num_classes=3, input_size=256, tf_same_padding=False,
    norm_cfg=dict(type='BN', momentum=0.03, eps=1e-3, requires_grad=True))
model.test_cfg.score_thr = 0.05
optim_wrapper = dict(paramwise_cfg=dict(bypass_duplicate=True))
