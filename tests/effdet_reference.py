"""rwightman's effdet 0.4.1 as the reference EfficientDet of the parity tests (test-only).

effdet and timm are installed from ``requirements/reference.txt`` with ``--no-deps``; they
import behind :mod:`torchvision_standin`.
"""
import torch

_EFFDET = None


def effdet():
    """The ``effdet`` package (imported once)."""
    global _EFFDET
    if _EFFDET is None:
        import torchvision_standin
        _EFFDET = torchvision_standin.import_effdet()
    return _EFFDET


def converter():
    """The package's effdet converter (:mod:`mmdet_spine.converters.effdet`)."""
    from mmdet_spine.converters import effdet as effdet_converter
    return effdet_converter


def randomized_reference(name: str, size: int, seed: int = 0, **overrides):
    """effdet ``name`` at ``size`` px (config fields overridden by ``overrides``) with random
    weights, BN statistics, fusion weights and prediction biases, in eval mode."""
    torch.manual_seed(seed)
    config = effdet().get_efficientdet_config(name)
    config.image_size = (size, size)
    for key, value in overrides.items():
        setattr(config, key, value)
    model = effdet().create_model_from_config(config, pretrained=False,
                                              pretrained_backbone=False)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
        for n, p in model.named_parameters():
            if n.endswith('edge_weights'):
                p.copy_(torch.rand(p.shape, generator=g) + 0.25)
            elif n.endswith('predict.conv_pw.bias'):
                p.copy_(torch.randn(p.shape, generator=g))
    return model.eval()
