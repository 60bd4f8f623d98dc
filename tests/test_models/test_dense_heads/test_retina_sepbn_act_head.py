"""RetinaSepBNActHead: activation option and TF's separable (SpineNet-Mobile) variant."""
import math

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.registry import init_default_scope

import mmdet_spine  # noqa: F401
from mmdet_spine.errors import ConfigError
from mmdet_spine.models.layers.separable_conv import SeparableConvModule


def build(**kwargs):
    init_default_scope('mmdet')
    cfg = dict(type='RetinaSepBNActHead', num_classes=3, num_ins=3, in_channels=8,
               feat_channels=8, stacked_convs=2, norm_cfg=dict(type='BN'),
               act_cfg=dict(type='Swish'),
               anchor_generator=dict(type='AnchorGenerator', octave_base_scale=3,
                                     scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
                                     strides=[8, 16, 32], center_offset=0.5))
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def test_separable_towers_shared_across_levels_with_bn_per_level():
    head = build(separable=True)
    for towers in (head.cls_convs, head.reg_convs):
        for i in range(2):
            convs = [tower[i].conv for tower in towers]
            assert isinstance(convs[0], SeparableConvModule)
            assert all(c is convs[0] for c in convs)
            assert len({id(tower[i].bn) for tower in towers}) == 3
            assert convs[0].depthwise_conv.conv.groups == 8
            assert convs[0].pointwise_conv.conv.bias is not None  # TF keeps it before BN
    # TF's count: per shared separable conv 9C + C*C + C, per level and conv a BN (2C);
    # predictors 9C + C*out + out
    c, a = 8, 9
    tower = 2 * (2 * (9 * c + c * c + c) + 3 * 2 * 2 * c)
    preds = (9 * c + c * a * 3 + a * 3) + (9 * c + c * a * 4 + a * 4)
    assert sum(p.numel() for p in head.parameters()) == tower + preds
    assert type(head.cls_convs[0][0].activate).__name__ == 'Swish'


def test_separable_init_and_forward_backward():
    head = build(separable=True)
    bias = head.retina_cls.pointwise_conv.conv.bias
    assert torch.allclose(bias, torch.full_like(bias, -math.log(99)), atol=1e-6)
    assert torch.count_nonzero(head.retina_reg.pointwise_conv.conv.bias) == 0
    assert 0.02 < float(head.retina_reg.pointwise_conv.conv.weight.std()) < 0.04
    feats = [torch.rand(1, 8, s, s) for s in (8, 4, 2)]
    cls_scores, bbox_preds = head(feats)
    assert [tuple(c.shape) for c in cls_scores] == [(1, 27, s, s) for s in (8, 4, 2)]
    assert [tuple(b.shape) for b in bbox_preds] == [(1, 36, s, s) for s in (8, 4, 2)]
    sum(c.sum() for c in cls_scores).backward()
    assert head.cls_convs[0][0].conv.depthwise_conv.conv.weight.grad is not None


def test_plain_head_unchanged_and_bad_option():
    head = build()
    assert isinstance(head.retina_cls, torch.nn.Conv2d)
    assert head.cls_convs[2][1].conv is head.cls_convs[0][1].conv
    with pytest.raises(ConfigError, match="separable='yes' must be True or False"):
        build(separable='yes')
