"""SpineNet-Mobile: TF parameter parity, shapes, block structure, shared builder."""
import pytest
import torch

from mmdet.models.layers import InvertedResidual
from mmdet.registry import MODELS
from mmdet_spine.models.backbones import SpineNet, SpineNetMobile
from mmdet_spine.models.layers import DepthwiseCrossScaleResample

TF_PARAMS = {'49XS': 842_456, '49S': 975_678, '49': 2_268_708}


@pytest.mark.parametrize('arch', list(TF_PARAMS))
def test_param_count_matches_tf(arch):
    with torch.device('meta'):
        model = SpineNetMobile(arch=arch)
    assert sum(p.numel() for p in model.parameters()) == TF_PARAMS[arch]


@pytest.mark.parametrize('padding_mode, size', [('pytorch', (128, 128)), ('tf_same', (72, 40))])
def test_shapes(padding_mode, size):
    model = MODELS.build(dict(type='SpineNetMobile', arch='49XS',
                              padding_mode=padding_mode)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, *size))
    expect = []
    for lv in range(3, 8):
        h, w = size
        for _ in range(lv):
            h, w = -(-h // 2), -(-w // 2)
        expect.append((1, 24, h, w))
    assert [tuple(o.shape) for o in outs] == expect


def test_same_builder_different_tables():
    model = SpineNetMobile(arch='49XS', block_repeats=2, drop_path_rate=0.2)
    assert isinstance(model, SpineNet)
    assert model.plan.levels[:2] == [1, 2]
    assert model.plan.merged[13] == (12,)  # unconsumed level-5 block merged into an output
    first, second = model.blocks['5'].layers
    assert isinstance(first, InvertedResidual) and first.with_res_shortcut
    assert type(first.se.conv2.activate).__name__ == 'HSigmoid'
    assert type(second.se.conv2.activate).__name__ == 'Sigmoid'
    assert first.drop_path.drop_prob == pytest.approx(0.2 * 5 / 16)
    # SE squeezes the block input width: int(40 * 0.6 * 0.2) = 4 at level 3
    assert model.blocks['4'].layers[0].se.conv1.conv.out_channels == 4
    assert isinstance(model.blocks['1'].resample[0], DepthwiseCrossScaleResample)
    assert not model.init_blocks[1][0].with_res_shortcut  # stride-2 stem block


def test_errors():
    with pytest.raises(ValueError, match=r"arch='49L' is not a SpineNetMobile architecture; "
                                         r'valid choices: 49, 49S, 49XS'):
        SpineNetMobile(arch='49L')
    with pytest.raises(ValueError, match=r"block_fn='bottleneck'.*valid choices: mbconv"):
        SpineNetMobile(block_specs=[(3, 'bottleneck', (0, 1), True)])
    with pytest.raises(ValueError, match=r'se_ratio=0'):
        SpineNetMobile(se_ratio=0)


def test_tf_same_keeps_state_dict_keys():
    a = SpineNetMobile(arch='49XS')
    b = SpineNetMobile(arch='49XS', padding_mode='tf_same')
    assert list(a.state_dict()) == list(b.state_dict())
    b.load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match=r"padding_mode='tf_same'.*conv_cfg"):
        SpineNetMobile(arch='49XS', padding_mode='tf_same', conv_cfg=dict(type='Conv2d'))
