"""EfficientDetSepBNHead and EfficientDetAnchorGenerator."""
import math

import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmengine.registry import init_default_scope

import mmdet_spine  # noqa: F401  (registers the head and the anchor generator)


def head_cfg(**kwargs):
    cfg = dict(type='EfficientDetSepBNHead', num_classes=3, in_channels=16, stacked_convs=2,
               num_levels=3,
               anchor_generator=dict(type='EfficientDetAnchorGenerator', strides=[8, 16, 32]),
               bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
               loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=1.5, alpha=0.25),
               loss_bbox=dict(type='SmoothL1Loss', beta=0.1, loss_weight=1.25))
    cfg.update(kwargs)
    return cfg


def test_shapes_shared_convs_and_per_level_norms():
    init_default_scope('mmdet')
    head = MODELS.build(head_cfg()).eval()
    x = [torch.rand(2, 16, s, s) for s in (16, 8, 4)]
    with torch.no_grad():
        cls, box = head(x)
    assert [tuple(c.shape) for c in cls] == [(2, 27, s, s) for s in (16, 8, 4)]
    assert [tuple(b.shape) for b in box] == [(2, 36, s, s) for s in (16, 8, 4)]
    assert len(head.cls_convs) == 2 and all(len(n) == 3 for n in head.cls_norms)
    assert head.cls_norms[0][0] is not head.cls_norms[0][1]


def test_class_prior_bias():
    init_default_scope('mmdet')
    head = MODELS.build(head_cfg())
    head.init_weights()
    bias = head.cls_pred.pointwise_conv.conv.bias
    torch.testing.assert_close(bias, torch.full_like(bias, -math.log(99)))


def test_anchor_layout_is_scale_major_with_wh_factors():
    gen = TASK_UTILS.build(dict(type='EfficientDetAnchorGenerator', strides=[8],
                                octave_base_scale=4, scales_per_octave=3))
    base = gen.base_anchors[0]
    assert base.shape == (9, 4)
    wh = base[:, 2:] - base[:, :2]
    centres = (base[:, 2:] + base[:, :2]) / 2
    torch.testing.assert_close(centres, torch.full_like(centres, 4.0))  # cell centre
    expected = [(32 * 2**(o / 3) * w, 32 * 2**(o / 3) * h)
                for o in range(3) for w, h in ((1, 1), (1.4, 0.7), (0.7, 1.4))]
    torch.testing.assert_close(wh, torch.tensor(expected))


def test_default_init_cfg_is_tf_variance_scaling_with_prior_and_keeps_distribution():
    init_default_scope('mmdet')
    head = MODELS.build(head_cfg(prior_prob=0.05))
    assert head.init_cfg['type'] == 'TFConv' and head.init_cfg['mode'] == 'variance_scaling'
    assert head.init_cfg['override'] == dict(type='TFConv', name='cls_pred',
                                             mode='variance_scaling', bias_prob=0.05)
    torch.manual_seed(0)
    head.init_weights()
    bias = head.cls_pred.pointwise_conv.conv.bias
    torch.testing.assert_close(bias, torch.full_like(bias, -math.log(0.95 / 0.05)))
    pw = head.cls_convs[0].pointwise_conv.conv  # 1x1, 16 -> 16: std sqrt(1 / 16)
    assert abs(pw.weight.std().item() - 0.25) < 0.05
    assert torch.all(pw.bias == 0) and torch.all(head.reg_pred.pointwise_conv.conv.bias == 0)
    dw = head.reg_convs[1].depthwise_conv.conv  # depthwise 3x3: fan_in 9
    assert abs(dw.weight.std().item() - 1 / 3) < 0.07


def test_numeric_args_are_checked_at_build():
    import pytest

    from mmdet_spine.errors import ConfigError
    init_default_scope('mmdet')
    cases = [(dict(num_classes=0), r'EfficientDetSepBNHead: num_classes=0 must be >= 1'),
             (dict(stacked_convs=-1), r'stacked_convs=-1 must be .*>= 0'),
             (dict(num_levels=0), r'num_levels=0 must be .*>= 1'),
             (dict(prior_prob=1.0), r'prior_prob=1\.0 must be in \(0, 1\)'),
             (dict(feat_channels=0), r'feat_channels=0 must be .*>= 1'),
             (dict(anchor_generator=dict(type='EfficientDetAnchorGenerator', strides=[8, 0])),
              r'EfficientDetAnchorGenerator: strides\[1\]=0 must be > 0'),
             (dict(anchor_generator=dict(type='EfficientDetAnchorGenerator', strides=[8],
                                         octave_base_scale=-4)),
              r'octave_base_scale=-4 must be > 0')]
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=message):
            MODELS.build(head_cfg(**kwargs))


def test_anchor_strides_may_be_fractional():
    """Lite0 at 320 px: P7 is 3x3, effdet's anchor stride there is 320 / 3."""
    gen = TASK_UTILS.build(dict(type='EfficientDetAnchorGenerator', strides=[320 / 3],
                                octave_base_scale=3, scales_per_octave=3))
    anchors = gen.grid_priors([(3, 3)], device='cpu')[0]
    centres = ((anchors[:, :2] + anchors[:, 2:]) / 2)[::9]
    torch.testing.assert_close(centres[:3, 0], torch.tensor([160 / 3, 160, 800 / 3]))
    wh = anchors[0, 2:] - anchors[0, :2]
    torch.testing.assert_close(wh, torch.full((2, ), 320.0))
