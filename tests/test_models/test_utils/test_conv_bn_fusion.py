"""BN folding for inference (mmdet_spine.models.utils.conv_bn_fusion)."""
import copy

import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

import mmdet_spine  # noqa: F401
from helpers import REPO
from mmdet_spine.models.detectors.efficientdet_scaling import efficientdet_model_cfg
from mmdet_spine.models.utils import (count_norm_layers, find_conv_bn_pairs,
                                      fuse_conv_bn_for_inference)

register_all_modules()
SPINENET_TINY = f'{REPO}/configs/spinenet/retinanet_spinenet-49s-tiny_8xb8-12e_shapes.py'


def randomized(model_cfg, seed=0):
    torch.manual_seed(seed)
    model = revert_sync_batchnorm(MODELS.build(model_cfg)).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def outputs(model, x):
    with torch.no_grad():
        cls, box = model._forward(x)
    return torch.cat([t.flatten() for t in cls + box])


def check_fusion(model, x, expect_pairs):
    ref = outputs(model, x)
    assert count_norm_layers(model) == expect_pairs
    pairs = find_conv_bn_pairs(copy.deepcopy(model), lambda m: m._forward(x))
    # the shared head convs feed a norm per level: not foldable until unshared
    assert 0 < len(pairs) < expect_pairs
    fused = fuse_conv_bn_for_inference(copy.deepcopy(model), example=lambda m: m._forward(x))
    assert count_norm_layers(fused) == 0
    assert (outputs(fused, x) - ref).abs().max() < 1e-4
    by_order = fuse_conv_bn_for_inference(copy.deepcopy(model))
    assert count_norm_layers(by_order) == 0
    assert (outputs(by_order, x) - ref).abs().max() < 1e-4
    # folding actually changed the convs (a no-op would also keep the outputs)
    assert sum(p.numel() for p in fused.parameters()) != sum(
        p.numel() for p in model.parameters())


def test_fuse_spinenet_retinanet():
    model = randomized(Config.fromfile(SPINENET_TINY).model)
    check_fusion(model, torch.randn(1, 3, 128, 128), 150)


def test_fuse_efficientdet_d0():
    cfg = efficientdet_model_cfg('d0', num_classes=5, input_size=128)
    model = randomized(cfg)
    check_fusion(model, torch.randn(1, 3, 128, 128), 108)
