"""FreezeMixin: the one ``frozen_stages`` / ``norm_eval`` implementation of every backbone."""
import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet_spine.errors import ConfigError
from mmdet_spine.models.backbones import SpineNet, SpineNetMobile, SpineResNet
from mmdet_spine.models.utils.freezing import FreezeMixin, freeze_modules


class ToyBackbone(FreezeMixin, nn.Module):
    """Stem + 3 stages of conv-BN; ``frozen_stages`` in mmdet's convention."""

    def __init__(self, frozen_stages=-1, norm_eval=False):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)) for _ in range(3))
        self.frozen_stages, self.norm_eval = frozen_stages, norm_eval
        self._check_freezing('ToyBackbone', 3)
        self._freeze_stages()

    def frozen_modules(self):
        mods = [self.stem] if self.frozen_stages >= 0 else []
        return mods + list(self.stages[:max(self.frozen_stages, 0)])

    def forward(self, x):
        x = self.stem(x)
        for s in self.stages:
            x = s(x)
        return x


def trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def bn_training(model):
    return {n: m.training for n, m in model.named_modules() if isinstance(m, _BatchNorm)}


@pytest.mark.parametrize('frozen_stages, frozen', [
    (-1, []), (0, ['stem']), (1, ['stem', 'stages.0']),
    (3, ['stem', 'stages.0', 'stages.1', 'stages.2'])])
def test_mixin_freezes_listed_modules_and_keeps_them_in_eval(frozen_stages, frozen):
    model = ToyBackbone(frozen_stages).train()
    def is_frozen(name):
        return any(name == f or name.startswith(f + '.') for f in frozen)
    names = [n for n, _ in model.named_parameters()]
    assert len(names) == 16
    assert trainable(model) == {n for n in names if not is_frozen(n)}
    assert bn_training(model) == {n: not is_frozen(n) for n in bn_training(model)}
    # frozen BNs keep their running statistics through a training-mode forward
    before = {n: b.clone() for n, b in model.named_buffers() if n.endswith('running_mean')}
    out = model(torch.randn(2, 3, 8, 8))
    for n, b in model.named_buffers():
        if n.endswith('running_mean'):
            assert torch.equal(b, before[n]) == is_frozen(n), n
    # no gradient reaches a frozen parameter
    assert out.requires_grad == (frozen_stages < 3)
    if out.requires_grad:
        out.sum().backward()
    for n, p in model.named_parameters():
        assert (p.grad is None) == is_frozen(n), n


def test_norm_eval_puts_every_bn_in_eval_but_not_the_model():
    model = ToyBackbone(frozen_stages=-1, norm_eval=True).train()
    assert model.training and all(m.training for m in model.stages)
    assert not any(bn_training(model).values())
    assert len(trainable(model)) == 16  # norm_eval freezes statistics, not parameters
    model.eval()
    assert not any(bn_training(model).values())
    model.train()  # train() again: still eval
    assert not any(bn_training(model).values())
    plain = ToyBackbone(norm_eval=False).train()
    assert all(bn_training(plain).values())


def test_freeze_modules_and_bad_freezing_values():
    convs = [nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)]
    freeze_modules(convs)
    assert not any(p.requires_grad for m in convs for p in m.parameters())
    assert not convs[1].training
    with pytest.raises(ConfigError, match=r'ToyBackbone: frozen_stages=4 must be in -1..3'):
        ToyBackbone(frozen_stages=4)
    with pytest.raises(ConfigError, match=r"frozen_stages='1' must be an integer in -1..3"):
        ToyBackbone(frozen_stages='1')
    with pytest.raises(ConfigError, match=r"ToyBackbone: norm_eval='False' must be True or "
                                          r'False'):
        ToyBackbone(norm_eval='False')


TINY_SPINENET = dict(arch='49', filter_size_scale=0.125, endpoints_num_filters=8)


@pytest.mark.parametrize('build, frozen_stages, frozen_prefixes', [
    (lambda fs: SpineNet(frozen_stages=fs, **TINY_SPINENET), 0, ['stem_conv.']),
    (lambda fs: SpineNet(frozen_stages=fs, **TINY_SPINENET), 2,
     ['stem_conv.', 'init_blocks.', 'blocks.1.']),
    (lambda fs: SpineNetMobile(arch='49XS', frozen_stages=fs), 1,
     ['stem_conv.', 'init_blocks.']),
    (lambda fs: SpineNetMobile(arch='49XS', frozen_stages=fs), 3,
     ['stem_conv.', 'init_blocks.', 'blocks.1.', 'blocks.2.']),
    (lambda fs: SpineResNet(depth=18, frozen_stages=fs, norm_eval=False), 0,
     ['conv1.', 'bn1.']),
    (lambda fs: SpineResNet(depth=18, frozen_stages=fs, norm_eval=False), 2,
     ['conv1.', 'bn1.', 'layer1.', 'layer2.']),
])
def test_backbones_use_the_mixin(build, frozen_stages, frozen_prefixes):
    model = build(frozen_stages).train()
    assert isinstance(model, FreezeMixin)
    assert type(model).train is FreezeMixin.train
    assert type(model)._freeze_stages is FreezeMixin._freeze_stages
    def is_frozen(name):
        return name.startswith(tuple(frozen_prefixes))
    names = [n for n, _ in model.named_parameters()]
    assert trainable(model) == {n for n in names if not is_frozen(n)}
    assert 0 < sum(map(is_frozen, names)) < len(names)
    for name, training in bn_training(model).items():
        assert training == (not is_frozen(name + '.')), name
    assert len(trainable(build(-1).train())) == len(names)
