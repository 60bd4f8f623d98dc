"""SpineResNet: key-for-key and numerical parity with mmdet's ResNet, options, errors."""
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.models.backbones import ResNet, ResNeXt
from mmdet.registry import MODELS
from mmdet_spine.models.backbones import SpineResNet


def randomize(model):
    """Non-trivial weights and BN statistics (eval mode then uses them)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)
        for name, b in model.named_buffers():
            if name.endswith('running_var'):
                b.uniform_(0.5, 2.0)
            elif name.endswith('running_mean'):
                b.normal_(0, 0.1)


def assert_parity(ref, ours, size=64):
    assert list(ref.state_dict()) == list(ours.state_dict())
    randomize(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.eval()
    ours.eval()
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        expect, got = ref(x), ours(x)
    assert len(expect) == len(got)
    for e, g in zip(expect, got):
        assert e.shape == g.shape
        assert (e - g).abs().max() <= 1e-5


@pytest.mark.parametrize('depth', [50, 18])
def test_parity_with_mmdet_resnet(depth):
    assert_parity(ResNet(depth=depth), SpineResNet(depth=depth))


def test_parity_caffe_style_dcn_and_out_indices():
    dcn = dict(type='DCNv2', deform_groups=1, fallback_on_stride=False)
    kw = dict(depth=50, style='caffe', out_indices=(1, 3), dcn=dcn,
              stage_with_dcn=(False, False, False, True))
    assert_parity(ResNet(**kw), SpineResNet(**kw), size=32)


def test_parity_resnext():
    kw = dict(depth=50, groups=32, base_width=4, num_stages=2, out_indices=(0, 1),
              strides=(1, 2), dilations=(1, 1), stage_with_dcn=(False, False))
    assert_parity(ResNeXt(**kw), SpineResNet(**kw), size=32)


def test_shapes_strides_dilations():
    model = MODELS.build(dict(type='SpineResNet', depth=18)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 64, 16, 16), (1, 128, 8, 8),
                                              (1, 256, 4, 4), (1, 512, 2, 2)]
    assert model.out_channels == [64, 128, 256, 512]
    dilated = SpineResNet(depth=18, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2),
                          out_indices=(3,)).eval()
    with torch.no_grad():
        (out,) = dilated(torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 512, 4, 4)
    assert dilated.layer4[0].conv1.dilation == (2, 2)


def test_frozen_stages_and_norm_eval():
    model = SpineResNet(depth=18, frozen_stages=1, norm_eval=False)
    model.train()
    for m in (model.conv1, model.norm1, model.layer1):
        assert all(not p.requires_grad for p in m.parameters())
    assert not model.norm1.training and not model.layer1[0].bn1.training
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert model.layer2[0].bn1.training
    model = SpineResNet(depth=18, norm_eval=True)
    model.train()
    assert not any(m.training for m in model.modules() if isinstance(m, _BatchNorm))


def test_drop_path_act_and_norm_options():
    model = SpineResNet(depth=18, drop_path_rate=0.1, act_cfg=dict(type='Swish'),
                        norm_cfg=dict(type='GN', num_groups=8), zero_init_residual=True)
    assert model.layer4[1].drop_path.drop_prob == pytest.approx(0.1)
    assert model.layer1[0].drop_path.drop_prob == pytest.approx(0.1 / 8)
    assert 'gn1.weight' in model.state_dict() and 'layer1.0.gn2.weight' in model.state_dict()
    model.init_weights()
    assert torch.count_nonzero(model.layer1[0].gn2.weight) == 0
    model.eval()
    with torch.no_grad():
        assert len(model(torch.rand(1, 3, 32, 32))) == 4


@pytest.mark.parametrize('kwargs, match', [
    (dict(depth=20), r'depth=20 is not a SpineResNet depth; valid choices: 18, 34, 50, 101, '
                     r'152'),
    (dict(depth=18, groups=32), r'groups=32 needs a bottleneck depth'),
    (dict(depth=18, out_indices=(4,)), r'out_indices=\(4,\) has \[4\]'),
    (dict(depth=18, style='tf'), r"style='tf'.*pytorch, caffe"),
    (dict(depth=18, frozen_stages=5), r'frozen_stages=5 must be in -1..4'),
    (dict(depth=50, dcn=dict(type='DCNv2')), r'stage_with_dcn'),
])
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpineResNet(**kwargs)


def test_classification_mode():
    """GAP + linear head for ImageNet-style use; logits shape and trainable fc."""
    import torch
    model = SpineResNet(depth=18, num_classes=10)
    logits = model(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 10)
    assert model.fc.in_features == 512 and model.fc.weight.shape == (10, 512)
    logits.sum().backward()
    assert model.fc.weight.grad is not None and model.conv1.weight.grad is not None
    assert SpineResNet(depth=50, num_classes=5).fc.in_features == 2048
    with pytest.raises(ValueError, match='num_classes=0'):
        SpineResNet(depth=18, num_classes=0)
