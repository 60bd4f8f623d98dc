"""EfficientDetSepBNHead and EfficientDetAnchorGenerator."""
import math

import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmengine.registry import init_default_scope


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
