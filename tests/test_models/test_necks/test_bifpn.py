"""BiFPN: topology, shapes, fusion, resampling ownership and build-time errors."""
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.registry import init_default_scope

from mmdet_spine.models.layers import FeatureFusion
from mmdet_spine.models.necks.bifpn import BiFPN, bifpn_topology

B0_CHANNELS = [40, 112, 320]


def feats(size=128, channels=B0_CHANNELS, strides=(8, 16, 32), batch=1):
    return [torch.rand(batch, c, size // s, size // s) for c, s in zip(channels, strides)]


def test_topology_is_the_papers_for_p3_p7():
    # ids 0-4: P3..P7 inputs; 5: P6', 6: P5', 7: P4', 8: P3'', then P4'', P5'', P6'', P7''
    assert bifpn_topology(5) == [
        (3, (3, 4)), (2, (2, 5)), (1, (1, 6)), (0, (0, 7)),
        (1, (1, 7, 8)), (2, (2, 6, 9)), (3, (3, 5, 10)), (4, (4, 11))]


@pytest.mark.parametrize('num_outs', [5, 6])
def test_output_shapes_and_channels(num_outs):
    size = 2**(2 + num_outs)  # the smallest valid: the top level is 1x1
    neck = BiFPN(B0_CHANNELS, 64, num_stages=2, num_outs=num_outs, input_size=size).eval()
    outs = neck(feats(size))
    assert [tuple(o.shape) for o in outs] == [(1, 64, size // 2**l, size // 2**l)
                                              for l in range(3, 3 + num_outs)]


def test_extra_levels_and_per_node_projections():
    neck = BiFPN(B0_CHANNELS, 64, num_stages=2)
    # P6 = 1x1 conv + BN on C5, then max-pool; P7 = max-pool only
    assert neck.extra_levels[0].conv is not None and neck.extra_levels[0].pool is not None
    assert neck.extra_levels[1].conv is None and neck.extra_levels[1].pool is not None
    first = neck.stages[0]
    # backbone P5 (id 2) feeds P5' (node 1) and P5'' (node 5): two separate projections
    p5_td, p5_bu = first.nodes[1].resample[0].conv, first.nodes[5].resample[0].conv
    assert p5_td is not None and p5_bu is not None and p5_td is not p5_bu
    assert all(r.conv is None for n in neck.stages[1].nodes for r in n.resample)


def test_fusion_weights_are_trainable_and_sum_has_none():
    neck = BiFPN(B0_CHANNELS, 32, num_stages=1, fusion='fast_attn')
    fusions = [m for m in neck.modules() if isinstance(m, FeatureFusion)]
    assert len(fusions) == 8 and all(f.method == 'weighted' for f in fusions)
    assert all(f.weight.requires_grad for f in fusions)
    opt = torch.optim.SGD(neck.parameters(), lr=0.1)
    sum((o**2).mean() for o in neck(feats(128, batch=2))).backward()
    before = [f.weight.detach().clone() for f in fusions]
    assert all(f.weight.grad is not None for f in fusions)
    opt.step()
    assert any(not torch.equal(b, f.weight) for b, f in zip(before, fusions))
    plain = BiFPN(B0_CHANNELS, 32, num_stages=1, fusion='sum')
    assert not any(hasattr(m, 'weight') for m in plain.modules() if isinstance(m, FeatureFusion))


def test_static_and_dynamic_padding_agree():
    torch.manual_seed(0)
    static = BiFPN(B0_CHANNELS, 32, num_stages=2, input_size=128).eval()
    dynamic = BiFPN(B0_CHANNELS, 32, num_stages=2).eval()
    dynamic.load_state_dict(static.state_dict())
    x = feats(128)
    with torch.no_grad():
        for a, b in zip(static(x), dynamic(x)):
            torch.testing.assert_close(a, b)


def test_after_another_backbone():
    """BiFPN behind mmdet's ResNet-18 (C3-C5 from its stages 1-3, start_level=1)."""
    init_default_scope('mmdet')
    backbone = MODELS.build(dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3),
                                 init_cfg=None))
    backbone.eval()  # mmdet's ResNet.train() returns None
    neck = MODELS.build(dict(type='BiFPN', in_channels=[64, 128, 256, 512], out_channels=48,
                             num_stages=2, start_level=1, num_outs=5,
                             tf_same_padding=False, input_size=(128, 256))).eval()
    with torch.no_grad():
        outs = neck(backbone(torch.rand(1, 3, 128, 256)))
    assert [tuple(o.shape[-2:]) for o in outs] == [(16, 32), (8, 16), (4, 8), (2, 4), (1, 2)]


def test_unknown_fusion_names_choices():
    with pytest.raises(ValueError, match=r"fusion='mean' is not a fusion method.*sum, weighted"):
        BiFPN(B0_CHANNELS, 64, num_stages=1, fusion='mean')


def test_input_size_must_be_multiple_of_top_stride():
    with pytest.raises(ValueError, match=r'width 600 is not a multiple of 2\*\*7 = 128 '
                                         r'\(levels P3-P7\); nearest valid sizes: 512, 640'):
        BiFPN(B0_CHANNELS, 64, num_stages=1, input_size=(512, 600))
    with pytest.raises(ValueError, match=r'2\*\*8 = 256.*nearest valid sizes: 1536, 1792'):
        BiFPN(B0_CHANNELS, 64, num_stages=1, num_outs=6, input_size=1600)


def test_in_channels_mismatch_at_forward_names_both():
    neck = BiFPN([40, 112, 256], 64, num_stages=1)
    with pytest.raises(ValueError,
                       match=r'in_channels=\[40, 112, 256\].*channels \[40, 112, 320\]'):
        neck(feats(128))


def test_bad_structure_args():
    with pytest.raises(ValueError, match='start_level=3'):
        BiFPN(B0_CHANNELS, 64, num_stages=1, start_level=3)
    with pytest.raises(ValueError, match='num_outs=2'):
        BiFPN(B0_CHANNELS, 64, num_stages=1, num_outs=2)
    with pytest.raises(ValueError, match='num_stages'):
        BiFPN(B0_CHANNELS, 64, num_stages=0)


def test_size_divisor_rounds_top_levels_up_like_tf_same():
    """EfficientDet-Lite0's 320 px: P6 5x5, P7 3x3 (ceil), upsampled back to the exact sizes."""
    from mmdet_spine.models.necks.bifpn import level_sizes
    assert level_sizes((320, 320), 3, 5) == [(40, 40), (20, 20), (10, 10), (5, 5), (3, 3)]
    neck = BiFPN(B0_CHANNELS, 32, num_stages=2, input_size=320, size_divisor=64).eval()
    dynamic = BiFPN(B0_CHANNELS, 32, num_stages=2).eval()
    dynamic.load_state_dict(neck.state_dict())
    x = feats(320)
    with torch.no_grad():
        outs, outs_dynamic = neck(x), dynamic(x)
    assert [tuple(o.shape[-2:]) for o in outs] == [(40, 40), (20, 20), (10, 10), (5, 5), (3, 3)]
    for a, b in zip(outs, outs_dynamic):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match=r'BiFPN: input_size height 500 is not a multiple of '
                                         r'size_divisor=64; nearest valid sizes: 448, 512'):
        BiFPN(B0_CHANNELS, 32, num_stages=1, input_size=500, size_divisor=64)
    # without size_divisor 320 is refused: the levels would not halve exactly
    with pytest.raises(ValueError, match=r'height 320 is not a multiple of 2\*\*7 = 128'):
        BiFPN(B0_CHANNELS, 32, num_stages=1, input_size=320)


def test_default_init_cfg_is_tf_glorot_uniform():
    neck = BiFPN(B0_CHANNELS, 64, num_stages=3)
    assert neck.init_cfg == dict(type='TFConv', mode='glorot_uniform', layer='Conv2d')
    init_default_scope('mmdet')
    torch.manual_seed(0)
    neck.init_weights()
    conv = neck.stages[0].nodes[0].conv.depthwise_conv.conv  # 64 x 1 x 3 x 3, groups 64
    limit = (6 / (9 + 9))**0.5  # TF fans: in 1 * 9, out 9 (per group)
    assert conv.weight.abs().max() <= limit and conv.weight.abs().max() > 0.9 * limit
    proj = neck.extra_levels[0].conv.conv  # 1x1 320 -> 64, with bias
    assert abs(proj.weight.std().item() - (2 / (320 + 64))**0.5) < 0.1 * (2 / 384)**0.5
    assert torch.all(proj.bias == 0)


@pytest.mark.parametrize('kwargs,message', [
    (dict(out_channels=0), r'BiFPN: out_channels=0 must be >= 1'),
    (dict(num_stages=2.5), r'BiFPN: num_stages=2\.5 must be an integer >= 1'),
    (dict(in_channels=[40, -112, 320]), r'BiFPN: in_channels\[1\]=-112 must be >= 1'),
    (dict(eps=0.0), r'BiFPN: eps=0\.0 must be > 0'),
    (dict(min_level=-1), r'BiFPN: min_level=-1 must be >= 0'),
    (dict(input_size=(512, 0)), r'BiFPN: input_size\[1\]=0 must be .*>= 1'),
    (dict(size_divisor=0, input_size=512), r'BiFPN: size_divisor=0 must be .*>= 1'),
    (dict(start_level=-1), r'BiFPN: start_level=-1 must be .*>= 0'),
])
def test_numeric_args_are_checked_at_build(kwargs, message):
    from mmdet_spine.errors import ConfigError
    args = dict(in_channels=B0_CHANNELS, out_channels=64, num_stages=1)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=message):
        BiFPN(**args)
