"""TFEfficientNet: the EfficientDet backbone (B0-B7, TF 'SAME' padding, drop-connect)."""
import pytest
import torch
from mmcv.cnn.bricks import DropPath
from torch.nn.modules.batchnorm import _BatchNorm

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
    net = TFEfficientNet('b0', frozen_stages=1, norm_eval=True)
    net.train()
    assert not any(p.requires_grad for p in net.stem.parameters())
    assert not any(p.requires_grad for p in net.stages[1].parameters())
    assert all(p.requires_grad for p in net.stages[2].parameters())
    assert all(not m.training for m in net.modules() if isinstance(m, _BatchNorm))


def test_bad_args_name_choices():
    with pytest.raises(KeyError, match=r"arch='b9'.*b0, b1.*b7"):
        TFEfficientNet('b9')
    with pytest.raises(ValueError, match='out_indices contains 7'):
        TFEfficientNet('b0', out_indices=(2, 7))
