"""The TF kernel initialisers as a registered mmengine weight initialiser (``TFConv``)."""
import math

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModule, initialize
from mmengine.registry import DefaultScope

from mmdet_spine.errors import ConfigError
from mmdet_spine.models.layers import Conv2dTFSame
from mmdet_spine.models.layers.tf_init import TFConvInit


class _Net(BaseModule):
    def __init__(self, init_cfg):
        super().__init__(init_cfg)
        self.dw = Conv2dTFSame(256, 256, 3, groups=256, bias=True)  # a Conv2d subclass
        self.pw = nn.Conv2d(256, 64, 1)
        self.head = nn.Conv2d(64, 90, 3)
        self.bn = nn.BatchNorm2d(64)


@pytest.mark.parametrize('scope', ['mmdet', 'mmengine'])
def test_found_from_the_mmdet_scope_and_the_root(scope):
    """Registered in mmengine's root registry: mmdet's child registry finds it via its parent."""
    import mmdet.registry  # noqa: F401  (creates mmdet's child WEIGHT_INITIALIZERS)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(scope):
        net = _Net(dict(type='TFConv', mode='efficientnet', layer='Conv2d',
                        override=dict(type='TFConv', name='head', mode='variance_scaling',
                                      bias_prob=0.01)))
        net.init_weights()
    assert abs(net.dw.weight.std().item() - math.sqrt(2 / 9)) < 0.03  # fan-out 9 per group
    assert abs(net.pw.weight.std().item() - math.sqrt(2 / 64)) < 0.02
    assert torch.all(net.dw.bias == 0) and torch.all(net.pw.bias == 0)
    assert abs(net.head.weight.std().item() - math.sqrt(1 / (64 * 9))) < 0.005
    torch.testing.assert_close(net.head.bias, torch.full((90, ), -math.log(99)))
    assert torch.all(net.bn.weight == 1)  # not a conv: untouched


def test_glorot_uniform_and_layer_filter():
    torch.manual_seed(0)
    conv, lin = nn.Conv2d(32, 32, 3, groups=32), nn.Linear(4, 4)
    before = lin.weight.detach().clone()
    initialize(nn.Sequential(conv, lin), dict(type='TFConv', mode='glorot_uniform',
                                              layer=['Conv2d', 'Linear']))
    limit = math.sqrt(6 / (9 + 9))
    assert conv.weight.abs().max() <= limit and conv.weight.abs().max() > 0.9 * limit
    assert torch.equal(lin.weight, before)  # only convolutions are TF-initialised
    other = nn.Conv2d(8, 8, 3)
    kept = other.weight.detach().clone()
    initialize(other, dict(type='TFConv', mode='glorot_uniform', layer='Linear'))
    assert torch.equal(other.weight, kept)  # layer filter: Conv2d not named


def test_unknown_mode_names_choices():
    with pytest.raises(ConfigError, match=r"TFConv: mode='he' is not a TF initialiser; valid "
                                          r'choices: efficientnet, glorot_uniform, '
                                          r'variance_scaling'):
        TFConvInit(mode='he')
