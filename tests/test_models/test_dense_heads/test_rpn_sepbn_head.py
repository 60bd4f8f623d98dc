"""RPNSepBNHead: convs shared over levels, a norm per level, the configured activation."""
import pytest
import torch
import torch.nn.functional as F

import mmdet_spine  # noqa: F401
from mmdet.registry import MODELS
from mmengine.registry import init_default_scope


def build(**kwargs):
    init_default_scope('mmdet')
    cfg = dict(type='RPNSepBNHead', num_ins=3, in_channels=8, feat_channels=8, num_convs=2,
               norm_cfg=dict(type='BN'), act_cfg=dict(type='Swish'),
               anchor_generator=dict(type='AnchorGenerator', octave_base_scale=3,
                                     scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
                                     strides=[8, 16, 32], center_offset=0.5))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_forward_is_shared_conv_per_level_norm_swish():
    torch.manual_seed(0)
    head = build()
    head.init_weights()
    for convs in head.rpn_convs:
        for bn in (c.bn for c in convs):
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2)
    head.eval()
    assert head.rpn_convs[2][1].conv is head.rpn_convs[0][1].conv
    assert head.rpn_convs[2][1].bn is not head.rpn_convs[0][1].bn
    feats = [torch.randn(1, 8, s, s) for s in (16, 8, 4)]
    with torch.no_grad():
        scores, deltas = head(feats)
    for level, (x, s, d) in enumerate(zip(feats, scores, deltas)):
        assert s.shape == (1, 9, x.shape[2], x.shape[3]) and d.shape == (1, 36, *x.shape[2:])
        y = x
        for conv in head.rpn_convs[level]:
            y = F.silu(conv.bn(F.conv2d(y, conv.conv.weight, conv.conv.bias, padding=1)))
        with torch.no_grad():
            torch.testing.assert_close(s, head.rpn_cls(y))
            torch.testing.assert_close(d, head.rpn_reg(y))
    # a different level's norm gives a different answer: the per-level norms are used
    with torch.no_grad():
        conv0 = head.rpn_convs[0][0].conv(feats[0])
        diff = head.rpn_convs[1][0].bn(conv0) - head.rpn_convs[0][0].bn(conv0)
        assert diff.abs().max() > 1e-3


def test_bad_levels():
    with pytest.raises(ValueError, match='num_ins=0'):
        build(num_ins=0)
    head = build()
    with pytest.raises(ValueError, match='got 2 feature levels, built with num_ins=3'):
        head([torch.randn(1, 8, 8, 8)] * 2)
