"""Conv + activation fusion for CPU inference (mmdet_spine.models.utils.conv_act_fusion)."""
import copy

import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.config import Config
from mmdet.utils import register_all_modules

import mmdet_spine  # noqa: F401
from helpers import REPO
from mmdet_spine.models.utils import (FusedConvAct2d, convert_to_channels_last,
                                      find_conv_act_pairs, fuse_conv_act_for_inference,
                                      fuse_conv_bn_for_inference)
from test_conv_bn_fusion import randomized

register_all_modules()
CL = torch.channels_last


class Cases(nn.Module):
    """One conv per case: which of them may take their activation as a post-op."""

    def __init__(self):
        super().__init__()
        c = 8
        self.plain = nn.ModuleDict(dict(
            relu=ConvModule(c, c, 3, padding=1, act_cfg=dict(type='ReLU')),  # in place
            silu=ConvModule(c, c, 3, padding=1, act_cfg=dict(type='SiLU')),
            relu6=ConvModule(c, c, 1, act_cfg=dict(type='ReLU6')),
            hswish=ConvModule(c, c, 3, stride=2, padding=1, act_cfg=dict(type='HSwish')),
            leaky=ConvModule(c, c, 3, padding=2, dilation=2,
                             act_cfg=dict(type='LeakyReLU', negative_slope=0.1)),
            gelu=ConvModule(c, c, 3, padding=1, groups=4, act_cfg=dict(type='GELU'))))
        # the conv output is also read by the residual add: not fusable
        self.reused = nn.Conv2d(c, c, 3, padding=1)
        self.reused_act = nn.SiLU()
        # one activation module after a fusable conv and after an add: neither fused
        self.shared_conv = nn.Conv2d(c, c, 3, padding=1)
        self.shared_act = nn.ReLU()
        # a conv called twice, each time followed by the same activation: fused
        self.twice = nn.Conv2d(c, c, 3, padding=1)
        self.twice_act = nn.SiLU()
        # a conv whose output is made contiguous first (a data op): not fused
        self.copied = nn.Conv2d(c, c, 1)
        self.copied_act = nn.ReLU()

    def forward(self, x):
        outs = [m(x) for m in self.plain.values()]
        y = self.reused(x)
        outs.append(self.reused_act(y) + y)
        outs.append(self.shared_act(self.shared_conv(x)) + self.shared_act(x + 1))
        outs.append(self.twice_act(self.twice(self.twice_act(self.twice(x)))))
        outs.append(self.copied_act(self.copied(x).contiguous(memory_format=CL)))
        return outs


@pytest.mark.parametrize('channels_last', [False, True])
def test_which_convs_take_their_activation(channels_last):
    torch.manual_seed(0)
    model = Cases().eval()
    x = torch.randn(2, 8, 17, 19)
    if channels_last:
        model = model.to(memory_format=CL)
        x = x.contiguous(memory_format=CL)
    with torch.no_grad():
        ref = model(x)
    pairs = find_conv_act_pairs(model, lambda m: m(x))
    names = {n for n, m in model.named_modules() if m in {c for c, _ in pairs}}
    assert names == {f'plain.{k}.conv' for k in model.plain} | {'twice'}
    assert fuse_conv_act_for_inference(model, lambda m: m(x)) == 7
    fused = dict(model.named_modules())
    assert {fused[f'plain.{k}.conv'].attr for k in model.plain} == {
        'relu', 'swish', 'hardtanh', 'hardswish', 'leaky_relu', 'gelu'}
    assert fused['plain.relu6.conv'].scalars == [0.0, 6.0]
    assert fused['plain.leaky.conv'].scalars == [0.1]
    assert isinstance(fused['plain.silu.activate'], nn.Identity)
    assert isinstance(fused['twice'], FusedConvAct2d)
    for kept in ('reused_act', 'shared_act', 'copied_act'):
        assert not isinstance(fused[kept], nn.Identity)
    with torch.no_grad():
        out = model(x)
    for a, b in zip(ref, out):
        assert (a - b).abs().max() <= 1e-5 * max(1.0, a.abs().max().item())


def test_gradients_take_the_unfused_path():
    torch.manual_seed(0)
    conv = ConvModule(4, 6, 3, padding=1, act_cfg=dict(type='SiLU'))
    x = torch.randn(1, 4, 9, 9)
    ref = conv(x)
    fuse_conv_act_for_inference(conv, lambda m: m(x))
    assert isinstance(conv.conv, FusedConvAct2d)
    out = conv(x)  # gradients enabled: conv, then the kept activation
    out.sum().backward()
    assert torch.allclose(out, ref, atol=1e-6) and conv.conv.weight.grad is not None
    # same parameters and state-dict keys as before
    assert set(conv.state_dict()) == {'conv.weight', 'conv.bias'}


@pytest.mark.parametrize('config', [
    'spinenet/retinanet_spinenet-49s_32xb8-lsj-500e_coco-640.py',
    'efficientdet/efficientdet_d0_bifpn_8xb16-300e_coco.py',
    'spinenet/mask-rcnn_spinenet-49s-tiny_8xb8-8e_shapes.py'])
def test_detectors_fused_for_inference_keep_their_outputs(config):
    """BN folded, channels-last, then activations fused: the network outputs stay within 1e-5
    (relative) of the model as trained, and the convs followed only by an activation run
    fused (SpineNet: the block-internal, resampling and endpoint convs and the head towers;
    EfficientDet: the backbone's and BiFPN's conv + swish)."""
    model = randomized(Config.fromfile(f'{REPO}/configs/{config}').model)
    x = torch.randn(1, 3, 128, 128)
    from test_channels_last import samples
    data = samples(1, 128)

    def run(m):
        return m._forward(x, data)
    with torch.no_grad():
        ref = run(model)
    fused = fuse_conv_bn_for_inference(copy.deepcopy(model), run)
    convert_to_channels_last(fused)
    n = fuse_conv_act_for_inference(fused, run)
    convs = sum(type(m) is nn.Conv2d for m in fused.modules())
    assert n >= 0.4 * (n + convs)
    with torch.no_grad():
        out = run(fused)
    from test_channels_last import flat
    for a, b in zip(flat(ref), flat(out)):
        assert (a - b).abs().max() <= 1e-5 * max(1.0, a.abs().max().item())


@pytest.mark.parametrize('block_fn,act,stride', [
    ('bottleneck', 'ReLU', 1), ('bottleneck', 'SiLU', 2), ('residual', 'ReLU', 2),
    ('residual', 'SiLU', 1), ('bottleneck', None, 1)])
@pytest.mark.parametrize('layout', ['nchw', 'nhwc', 'mixed'])
def test_residual_block_last_conv_takes_the_shortcut(block_fn, act, stride, layout):
    """The last conv of a BN-folded residual block computes ``act(conv(x) + shortcut)`` in one
    op (ReLU inside oneDNN's add post-op; other activations right after it), with or without
    a projection shortcut, in either memory format, even a mixed one."""
    from mmdet_spine.models.layers.residual_blocks import get_residual_block
    torch.manual_seed(0)
    cls = get_residual_block(block_fn)
    block = cls(32, 32 // cls.expansion if stride == 1 else 16, stride=stride,
                act_cfg=act and dict(type=act))
    for bn in block.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.weight.data.uniform_(0.5, 1.5), bn.bias.data.uniform_(-0.5, 0.5)
    block.eval()
    x = torch.randn(2, 32, 15, 16)
    if layout == 'nhwc':
        block, x = block.to(memory_format=CL), x.contiguous(memory_format=CL)
    elif layout == 'mixed':  # NHWC input, NCHW weights
        x = x.contiguous(memory_format=CL)
    with torch.no_grad():
        ref = block(x)
    block = fuse_conv_bn_for_inference(block, lambda m: m(x))
    n = fuse_conv_act_for_inference(block, lambda m: m(x))
    assert block.fused_add and isinstance(block.last_conv, FusedConvAct2d)
    assert block.last_conv.add and isinstance(block.act, nn.Identity)
    # act: conv1 (+ conv2 for bottlenecks) with their activation, and the last conv
    assert n == (1 if act is None else (3 if block_fn == 'bottleneck' else 2))
    with torch.no_grad():
        out = block(x)
    assert (out - ref).abs().max() <= 1e-5 * ref.abs().max()
    with pytest.raises(TypeError, match='takes x and other'):
        block.last_conv(x)
