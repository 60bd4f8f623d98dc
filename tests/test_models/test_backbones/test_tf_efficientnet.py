"""TFEfficientNet: the EfficientDet backbone (B0-B7, TF 'SAME' padding, drop-connect)."""
import math

import pytest
import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath
from mmengine.registry import init_default_scope
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet_spine.errors import ConfigError
from mmdet_spine.models.backbones import TFEfficientNet

#: Output channels at strides 8 / 16 / 32 (timm ``tf_efficientnet_b*`` feature_info).
CHANNELS = dict(b0=[40, 112, 320], b1=[40, 112, 320], b2=[48, 120, 352], b3=[48, 136, 384],
                b4=[56, 160, 448], b5=[64, 176, 512], b6=[72, 200, 576], b7=[80, 224, 640])


@pytest.mark.parametrize('arch', list(CHANNELS))
def test_out_channels_per_arch(arch):
    assert TFEfficientNet(arch).out_channels == CHANNELS[arch]


def test_output_shapes_and_strides():
    net = TFEfficientNet('b0', input_size=128).eval()
    with torch.no_grad():
        outs = net(torch.rand(1, 3, 128, 128))
    assert [tuple(o.shape) for o in outs] == [(1, 40, 16, 16), (1, 112, 8, 8), (1, 320, 4, 4)]
    assert net.out_strides == [8, 16, 32]


def test_odd_input_size_uses_tf_ceil():
    net = TFEfficientNet('b0', out_indices=(0, 2)).eval()
    with torch.no_grad():
        outs = net(torch.rand(1, 3, 100, 75))
    assert [tuple(o.shape[-2:]) for o in outs] == [(50, 38), (13, 10)]


def test_static_pads_equal_dynamic_and_differ_from_symmetric():
    """Train-mode BN (batch statistics) keeps the signal O(1) through the random network."""
    torch.manual_seed(0)
    nets = [TFEfficientNet('b0', drop_path_rate=0.0, **kw)
            for kw in (dict(input_size=64), {}, dict(tf_same_padding=False))]
    nets[0].init_weights()
    for net in nets[1:]:
        net.load_state_dict(nets[0].state_dict())
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        static, dynamic, symmetric = (net.train()(x) for net in nets)
    for s, d in zip(static, dynamic):
        torch.testing.assert_close(s, d)
    assert static[-1].std() > 0.1
    assert (static[-1] - symmetric[-1]).abs().max() > 1e-2


def test_drop_connect_rates_grow_linearly():
    net = TFEfficientNet('b0', drop_path_rate=0.2)
    rates = [m.drop_prob for m in net.modules() if isinstance(m, DropPath)]
    assert len(rates) == 15  # 16 blocks, the first rate is 0 (Identity)
    assert rates == sorted(rates) and abs(rates[-1] - 0.2 * 15 / 16) < 1e-9
    no_drop = TFEfficientNet('b0', drop_path_rate=0.0)
    assert not any(isinstance(m, DropPath) for m in no_drop.modules())


def test_frozen_stages_and_norm_eval():
    # mmdet's convention (as every mmdet-spine backbone): 0 the stem, n also stages[:n]
    net = TFEfficientNet('b0', frozen_stages=2, norm_eval=True)
    net.train()
    assert not any(p.requires_grad for p in net.stem.parameters())
    assert not any(p.requires_grad for p in net.stages[1].parameters())
    assert all(p.requires_grad for p in net.stages[2].parameters())
    assert all(not m.training for m in net.modules() if isinstance(m, _BatchNorm))


def test_bad_args_name_choices():
    # ConfigError (one line in the tools, #14); it is a ValueError, no longer a KeyError
    with pytest.raises(ConfigError, match=r"arch='b9'.*b0, b1.*b7"):
        TFEfficientNet('b9')
    with pytest.raises(ValueError, match='out_indices contains 7'):
        TFEfficientNet('b0', out_indices=(2, 7))


#: EfficientNet-Lite stride 8 / 16 / 32 channels and blocks per stage (timm
#: ``tf_efficientnet_lite*``: stem and the first / last stage not scaled).
LITE = dict(lite0=([40, 112, 320], [1, 2, 2, 3, 3, 4, 1]),
            lite1=([40, 112, 320], [1, 3, 3, 4, 4, 5, 1]),
            lite2=([48, 120, 352], [1, 3, 3, 4, 4, 5, 1]),
            lite3=([48, 136, 384], [1, 3, 3, 5, 5, 6, 1]),
            lite4=([56, 160, 448], [1, 4, 4, 6, 6, 8, 1]))


@pytest.mark.parametrize('arch', list(LITE))
def test_lite_has_no_se_relu6_and_fixed_stem_and_ends(arch):
    net = TFEfficientNet(arch)
    channels, repeats = LITE[arch]
    assert net.out_channels == channels
    assert [len(s) for s in net.stages] == repeats
    assert net.stem.conv.out_channels == 32
    assert not any(b.with_se for s in net.stages for b in s)
    acts = {type(m) for m in net.modules() if isinstance(m, (nn.ReLU6, nn.SiLU))}
    assert acts == {nn.ReLU6}


def test_b_series_keeps_se_swish_and_scaled_stem():
    net = TFEfficientNet('b4')
    assert all(b.with_se for s in net.stages for b in s)
    assert net.stem.conv.out_channels == 48
    assert [len(s) for s in net.stages] == [2, 4, 4, 6, 6, 8, 2]
    assert any(isinstance(m, nn.SiLU) for m in net.modules())


def test_lite_forward_shapes_at_320():
    net = TFEfficientNet('lite0', input_size=320).eval()
    with torch.no_grad():
        outs = net(torch.rand(1, 3, 320, 320))
    assert [tuple(o.shape) for o in outs] == [(1, 40, 40, 40), (1, 112, 20, 20),
                                              (1, 320, 10, 10)]


def test_default_init_cfg_is_the_tf_initialiser_and_keeps_its_distribution():
    net = TFEfficientNet('b0')
    assert net.init_cfg == dict(type='TFConv', mode='efficientnet', layer='Conv2d')
    init_default_scope('mmdet')  # the registry lookup as in a config-built model
    torch.manual_seed(0)
    net.init_weights()
    block = net.stages[6][0]
    dw = block.depthwise_conv.conv  # 1152 channels, 3x3: TF fan-out 9 (per group)
    assert abs(dw.weight.std().item() - math.sqrt(2 / 9)) < 0.02
    pw = block.linear_conv.conv  # 1x1, 1152 -> 320: fan-out 320
    assert abs(pw.weight.std().item() - math.sqrt(2 / 320)) < 0.1 * math.sqrt(2 / 320)
    stem = net.stem.conv  # 3x3, 3 -> 32 (mmcv's ConvModule re-inits it: same sqrt(2/fan_out))
    assert abs(stem.weight.std().item() - math.sqrt(2 / (32 * 9))) < 0.15 * math.sqrt(2 / 288)
    se = block.se.conv1.conv
    assert torch.all(se.bias == 0)


def test_pretrained_init_cfg_replaces_the_default():
    net = TFEfficientNet('b0', init_cfg=dict(type='Pretrained', checkpoint='x.pth'))
    assert net.init_cfg['type'] == 'Pretrained'


@pytest.mark.parametrize('field,value,message', [
    ('drop_path_rate', -0.5, r'TFEfficientNet: drop_path_rate=-0\.5 must be in \[0, 1\)'),
    ('drop_path_rate', 1.5, r'drop_path_rate=1\.5 must be in \[0, 1\)'),
    ('frozen_stages', 8, r'frozen_stages=8 must be in -1\.\.7'),
    ('frozen_stages', -2, r'frozen_stages=-2 must be in -1\.\.7'),
    ('input_size', 0, r'input_size=0 must be .*>= 1'),
    ('input_size', (320, -1), r'input_size\[1\]=-1 must be .*>= 1'),
    ('norm_eval', 'False', r"norm_eval='False' must be True or False"),
    ('out_indices', (-1, 2), r'out_indices contains -1; stages are 0\.\.6'),
    ('out_indices', (), r'out_indices=\(\) must name at least one stage'),
])
def test_numeric_args_are_checked_at_build(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TFEfficientNet('b0', **{field: value})


def test_frozen_stages_zero_is_the_stem_only():
    net = TFEfficientNet('b0', frozen_stages=0).train()
    assert not any(p.requires_grad for p in net.stem.parameters()) and not net.stem.training
    assert all(p.requires_grad for p in net.stages.parameters())
    assert not any(p.requires_grad for p in TFEfficientNet('b0', frozen_stages=7).parameters())
