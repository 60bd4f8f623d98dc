"""FusedFocalLoss equals mmdet's FocalLoss (values and gradients)."""
import pytest
import torch
from mmdet.registry import MODELS

import mmdet_spine  # noqa: F401


@pytest.mark.parametrize('gamma,alpha', [(1.5, 0.25), (2.0, 0.25), (2.0, 0.5)])
@pytest.mark.parametrize('with_weight,avg_factor,reduction', [
    (True, 37.0, 'mean'), (False, None, 'mean'), (True, None, 'sum'), (False, 5.0, 'mean')])
def test_same_as_mmdet_focal_loss(gamma, alpha, with_weight, avg_factor, reduction):
    g = torch.Generator().manual_seed(0)
    n, c = 500, 7
    x = (torch.randn(n, c, generator=g) * 4).requires_grad_()
    labels = torch.randint(0, c + 1, (n,), generator=g)  # c = background
    labels[:3] = c
    weight = (torch.rand(n, generator=g) > 0.1).float() if with_weight else None
    cfg = dict(use_sigmoid=True, gamma=gamma, alpha=alpha, loss_weight=1.3,
               reduction=reduction)
    ref_loss = MODELS.build(dict(type='FocalLoss', **cfg))
    ours = MODELS.build(dict(type='FusedFocalLoss', **cfg))
    x2 = x.detach().clone().requires_grad_()
    a = ref_loss(x, labels, weight, avg_factor=avg_factor)
    b = ours(x2, labels, weight, avg_factor=avg_factor)
    assert b.item() == pytest.approx(a.item(), rel=1e-5)
    a.backward(), b.backward()
    assert (x.grad - x2.grad).abs().max() <= 1e-5 * x.grad.abs().max()
    assert x.grad.abs().max() > 0


def test_falls_back_outside_the_fast_path():
    ours = MODELS.build(dict(type='FusedFocalLoss', use_sigmoid=True, reduction='none'))
    ref = MODELS.build(dict(type='FocalLoss', use_sigmoid=True, reduction='none'))
    x = torch.randn(20, 4)
    labels = torch.randint(0, 5, (20,))
    assert torch.allclose(ours(x, labels), ref(x, labels))
    assert ours(x, labels).shape == (20, 4)
