"""NormActConvFCBBoxHead and NormActFCNMaskHead: norms after every conv / fc / deconv and the
configured activation (TF Model Garden's Mask R-CNN heads)."""
import pytest
import torch
import torch.nn.functional as F

import mmdet_spine  # noqa: F401
from mmdet.registry import MODELS
from mmengine.registry import init_default_scope

BN = dict(type='BN')


def randomise_norms(module):
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)


def bbox_head(**kwargs):
    init_default_scope('mmdet')
    cfg = dict(type='NormActConvFCBBoxHead', num_shared_convs=2, num_shared_fcs=1,
               in_channels=4, conv_out_channels=4, fc_out_channels=16, roi_feat_size=3,
               num_classes=3, norm_cfg=BN, act_cfg=dict(type='Swish'))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_bbox_head_forward_is_conv_norm_swish_then_fc_norm_swish():
    torch.manual_seed(0)
    head = bbox_head()
    head.init_weights()
    randomise_norms(head)
    head.eval()
    x = torch.randn(5, 4, 3, 3)
    with torch.no_grad():
        cls, reg = head(x)
        y = x
        for conv in head.shared_convs:
            y = F.silu(conv.bn(F.conv2d(y, conv.conv.weight, padding=1)))
        fc, norm = head.shared_fcs[0], head.shared_fc_norms[0]
        assert isinstance(norm, torch.nn.BatchNorm1d)
        y = F.silu(norm(fc(y.flatten(1))))
        torch.testing.assert_close(cls, head.fc_cls(y))
        torch.testing.assert_close(reg, head.fc_reg(y))
    assert cls.shape == (5, 4) and reg.shape == (5, 12)


def test_bbox_head_errors():
    with pytest.raises(ValueError, match='fc_norm=True needs norm_cfg'):
        bbox_head(norm_cfg=None)
    with pytest.raises(ValueError, match='num_cls_fcs=1'):
        bbox_head(num_cls_fcs=1)
    head = bbox_head(norm_cfg=None, fc_norm=False)
    assert isinstance(head.shared_fc_norms[0], torch.nn.Identity)


def mask_head(**kwargs):
    init_default_scope('mmdet')
    cfg = dict(type='NormActFCNMaskHead', num_convs=2, in_channels=4, conv_out_channels=4,
               num_classes=3, norm_cfg=BN, act_cfg=dict(type='Swish'))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_mask_head_forward_normalises_the_deconv():
    torch.manual_seed(0)
    head = mask_head()
    head.init_weights()
    randomise_norms(head)
    head.eval()
    x = torch.randn(2, 4, 7, 7)
    with torch.no_grad():
        out = head(x)
        y = x
        for conv in head.convs:
            y = F.silu(conv.bn(F.conv2d(y, conv.conv.weight, padding=1)))
        y = F.silu(head.upsample_norm(head.upsample(y)))
        torch.testing.assert_close(out, head.conv_logits(y))
    assert out.shape == (2, 3, 14, 14)
    with pytest.raises(ValueError, match='upsample_norm=True needs norm_cfg'):
        mask_head(norm_cfg=None)
    assert mask_head(upsample_cfg=dict(type='bilinear', scale_factor=2)).upsample_norm is None
