"""TF 'SAME' padding: static pads at build time, -inf max-pool padding, conv layer."""
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule

from mmdet_spine.models.layers import Conv2dTFSame, MaxPool2dTFSame, TFSamePad2d, tf_same_padding


def test_tf_same_padding_values():
    assert tf_same_padding(64, 3, 2) == (0, 1)   # TF puts the odd cell at the end
    assert tf_same_padding(65, 3, 2) == (1, 1)
    assert tf_same_padding(64, 5, 2) == (1, 2)
    assert tf_same_padding(64, 3, 1) == (1, 1)


def test_static_pad_is_fixed_at_build_and_falls_back_for_other_sizes():
    pad = TFSamePad2d(3, 2, input_size=(64, 64))
    assert pad.static_pad == (0, 1, 0, 1)
    assert pad(torch.zeros(1, 1, 64, 64)).shape[-2:] == (65, 65)
    assert pad(torch.zeros(1, 1, 65, 63)).shape[-2:] == (67, 65)  # still TF-exact


def test_conv_matches_manual_tf_pad_and_builds_through_convmodule():
    torch.manual_seed(0)
    conv = ConvModule(4, 8, 3, stride=2, padding=1, norm_cfg=None, act_cfg=None,
                      conv_cfg=dict(type='Conv2dTFSame', input_size=(32, 32)))
    assert isinstance(conv.conv, Conv2dTFSame) and conv.conv.pad.static_pad == (0, 1, 0, 1)
    x = torch.rand(1, 4, 32, 32)
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.conv.weight, conv.conv.bias, stride=2)
    torch.testing.assert_close(conv(x), expected)
    stride1 = Conv2dTFSame(4, 4, 5, padding=0)
    assert stride1.pad is None and stride1.padding == (2, 2)  # symmetric: no F.pad at all


def test_max_pool_ignores_padded_cells():
    x = -torch.ones(1, 1, 4, 4)  # all negative: a zero pad would win at the border
    out = MaxPool2dTFSame(3, 2, input_size=(4, 4))(x)
    assert out.shape[-2:] == (2, 2) and torch.all(out == -1)


def test_tf_init_counts_depthwise_fan_out_per_group():
    import math

    import pytest
    import torch.nn as nn

    from mmdet_spine.models.layers import tf_conv_init
    torch.manual_seed(0)
    dw = nn.Conv2d(256, 256, 3, groups=256, bias=True)
    tf_conv_init(dw, 'efficientnet')
    assert abs(dw.weight.std().item() - math.sqrt(2 / 9)) < 0.03
    assert torch.all(dw.bias == 0)
    with pytest.raises(ValueError, match="kind='he'.*efficientnet, glorot_uniform"):
        tf_conv_init(dw, 'he')


def test_copy_free_depthwise_conv_and_pool_equal_explicit_tf_pad():
    # depthwise convs pad their kernel (zero tap) and pools use ceil_mode instead of copying
    # the input: same windows as F.pad + op, for even, odd and mixed sizes, static or not
    torch.manual_seed(0)
    for h, w in [(32, 32), (33, 33), (32, 33), (7, 8), (2, 2), (1, 1)]:
        for k, s in [(3, 2), (5, 2), (3, 1), (2, 2), (7, 2)]:
            for size in (None, (h, w)):
                x = torch.randn(2, 6, h, w)
                dw = Conv2dTFSame(6, 6, k, s, groups=6, input_size=size)
                expected = F.conv2d(TFSamePad2d(k, s)(x), dw.weight, dw.bias, s, groups=6)
                torch.testing.assert_close(dw(x), expected, rtol=0, atol=1e-5)
                pool = MaxPool2dTFSame(k, s, input_size=size)
                padded = TFSamePad2d(k, s, value=float('-inf'))(x)
                assert torch.equal(pool(x), F.max_pool2d(padded, k, s)), (h, w, k, s)


def test_our_swish_is_mmcvs_one_kernel_silu_with_mmcv_swish_math():
    import torch.nn as nn
    from mmcv.cnn import build_activation_layer

    from mmdet_spine.models.layers.swish import SWISH
    act = build_activation_layer(SWISH)
    assert type(act) is nn.SiLU
    mmcv_swish = build_activation_layer(dict(type='Swish'))  # still mmcv's own class
    assert type(mmcv_swish).__module__.startswith('mmcv.')
    x = torch.linspace(-30, 30, 10001)
    torch.testing.assert_close(act(x), mmcv_swish(x), rtol=1e-6, atol=1e-6)
