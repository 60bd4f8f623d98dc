"""Parameters and FLOPs of a config's model: one count for the benchmark and the metafiles.

Parameters are counted on the model the config builds (trainable or not, buffers excluded).
FLOPs are mmengine's ``FlopAnalyzer`` count, **one multiply-add = one FLOP** (the convention of
the SpineNet and EfficientDet papers: Du et al., CVPR 2020; Tan et al., CVPR 2020), for one
forward in mmdet's ``'tensor'`` mode (backbone, neck and heads' raw outputs; for two-stage
detectors also the RPN proposals and RoI heads, as mmdet's ``get_flops.py`` counts them). The
analyser traces a real forward, so it cannot run on the ``meta`` device.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn

__all__ = ['build_detector', 'count_parameters', 'NetworkForward', 'flop_analysis',
           'count_flops']


def build_detector(config: str, device: str = 'cpu') -> nn.Module:
    """Build a config file's model (eval mode) on ``device`` (``'meta'``: no memory).

    Args:
        config (str): Path of the config.
        device (str): Where to build; parts that compute on real tensors at build time (the
            anchor generators) are built on the CPU and moved. Default: ``'cpu'``.
    """
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from .. import classification, datasets, engine, models, zoo  # noqa: F401  (registries)
    init_default_scope('mmdet')
    cfg = Config.fromfile(config)
    try:
        with torch.device(device):
            model = MODELS.build(cfg.model)
    except RuntimeError:
        model = MODELS.build(cfg.model).to(device)
    return model.eval()


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


class NetworkForward(nn.Module):
    """``model._forward(x, samples)`` (mmdet's ``'tensor'`` mode) as a module of one tensor
    input, for tracing, FLOP counting and compiling.

    Args:
        model (nn.Module): The detector (or classifier).
        samples (list | None): The data samples ``_forward`` gets.
    """

    def __init__(self, model: nn.Module, samples: Optional[Sequence]):
        super().__init__()
        self.model = model
        self.samples = samples

    def forward(self, x: torch.Tensor):
        return self.model._forward(x, self.samples)


def flop_analysis(model: nn.Module, x: torch.Tensor, samples: Optional[Sequence]) -> dict:
    """``{flops, flops_by_operator, flops_uncounted_ops}`` of ``model._forward(x, samples)``.

    Args:
        model (nn.Module): The detector, in eval mode.
        x (Tensor): The input batch.
        samples (list | None): The data samples ``_forward`` gets.
    """
    from mmengine.analysis import FlopAnalyzer
    analyzer = FlopAnalyzer(NetworkForward(model, samples), (x,))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        total = analyzer.total()
    return dict(flops=int(total), flops_by_operator={k: int(v) for k, v in
                                                     analyzer.by_operator().items()},
                flops_uncounted_ops=sorted(analyzer.unsupported_ops()))


def count_flops(config: str, size: int) -> int:
    """FLOPs of one ``size`` x ``size`` image through a config's model in ``'tensor'`` mode.

    Args:
        config (str): Path of the config.
        size (int): Side of the square input in pixels.
    """
    from mmdet.structures import DetDataSample
    sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                         pad_shape=(size, size), scale_factor=(1.0, 1.0),
                                         batch_input_shape=(size, size)))
    return flop_analysis(build_detector(config), torch.zeros(1, 3, size, size),
                         [sample])['flops']
