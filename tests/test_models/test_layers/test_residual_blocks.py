"""Residual blocks: shapes, projection, stride placement, drop path, zero init, DCN, errors."""
import pytest
import torch
import torch.nn.functional as F

from mmdet_spine.models.layers import BottleneckBlock, ResidualBlock, get_residual_block


def test_shapes_and_projection():
    b = ResidualBlock(16, 32, stride=2)
    assert b(torch.rand(1, 16, 8, 8)).shape == (1, 32, 4, 4)
    assert b.downsample is not None
    assert ResidualBlock(16, 16).downsample is None
    bb = BottleneckBlock(16, 8)
    assert bb(torch.rand(1, 16, 8, 8)).shape == (1, 32, 8, 8)
    assert bb.out_channels == 32 and bb.downsample is not None
    assert BottleneckBlock(32, 8).downsample is None
    assert BottleneckBlock(32, 8, use_projection=True).downsample is not None
    keys = set(BottleneckBlock(16, 8).state_dict())
    assert {'conv1.weight', 'bn1.weight', 'conv2.weight', 'bn2.weight', 'conv3.weight',
            'bn3.weight', 'downsample.0.weight', 'downsample.1.weight'} <= keys


def test_stride_in_1x1_groups_dilation():
    pt = BottleneckBlock(16, 8, stride=2)
    caffe = BottleneckBlock(16, 8, stride=2, stride_in_1x1=True)
    assert pt.conv1.stride == (1, 1) and pt.conv2.stride == (2, 2)
    assert caffe.conv1.stride == (2, 2) and caffe.conv2.stride == (1, 1)
    x = BottleneckBlock(64, 64, groups=32, base_width=4)
    assert x.conv2.groups == 32 and x.width == 128
    d = BottleneckBlock(16, 8, dilation=2)
    assert d.conv2.dilation == (2, 2) and d(torch.rand(1, 16, 9, 9)).shape == (1, 32, 9, 9)


def test_norm_and_act_configs():
    b = BottleneckBlock(16, 8, norm_cfg=dict(type='GN', num_groups=4), act_cfg=dict(type='Swish'))
    assert {'gn1.weight', 'gn3.weight', 'downsample.1.weight'} <= set(b.state_dict())
    assert type(b.act).__name__ == 'Swish'
    assert b(torch.rand(1, 16, 4, 4)).shape == (1, 32, 4, 4)


def test_zero_init_residual_makes_identity_branch():
    b = BottleneckBlock(32, 8, zero_init_residual=True)
    b.init_weights()
    assert torch.count_nonzero(b.bn3.weight) == 0
    r = ResidualBlock(8, 8, zero_init_residual=True)
    r.init_weights()
    assert torch.count_nonzero(r.bn2.weight) == 0
    r.eval()
    x = torch.rand(1, 8, 4, 4)
    torch.testing.assert_close(r(x), F.relu(x))


def test_drop_path_identity_in_eval():
    torch.manual_seed(0)
    a = BottleneckBlock(16, 4, drop_path_rate=0.5).eval()
    b = BottleneckBlock(16, 4).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, 16, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))


def test_drop_path_drops_whole_branches_in_train():
    torch.manual_seed(0)
    p = 0.5
    block = BottleneckBlock(16, 4, drop_path_rate=p)
    block.train()
    for m in block.modules():  # fixed statistics: the branch must not depend on the batch
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    x = torch.randn(64, 16, 4, 4)
    with torch.no_grad():
        branch = block._residual(x)
        out = block(x)
    dropped = kept = 0
    for n in range(x.shape[0]):
        if torch.allclose(out[n], F.relu(x[n])):
            dropped += 1
        else:
            torch.testing.assert_close(out[n], F.relu(branch[n] / (1 - p) + x[n]))
            kept += 1
    assert dropped > 10 and kept > 10


def test_dcn_v2():
    b = BottleneckBlock(16, 4, dcn=dict(type='DCNv2', deform_groups=1))
    assert 'conv2.conv_offset.weight' in b.state_dict()
    assert b(torch.rand(1, 16, 6, 6)).shape == (1, 16, 6, 6)


def test_errors():
    with pytest.raises(ValueError, match=r'groups=32 is not supported by the basic'):
        ResidualBlock(64, 64, groups=32)
    with pytest.raises(ValueError, match=r"block_fn='mbconv'.*residual, basic, bottleneck"):
        get_residual_block('mbconv')
    with pytest.raises(ValueError, match=r'use_projection=False needs stride 1'):
        ResidualBlock(8, 16, use_projection=False)
    with pytest.raises(ValueError, match=r'drop_path_rate=1'):
        ResidualBlock(8, 8, drop_path_rate=1)
