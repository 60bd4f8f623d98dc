"""Run a detector or classifier in the channels-last (NHWC) memory format.

oneDNN, which runs PyTorch's CPU convolutions, computes in NHWC; with NCHW tensors every
convolution reorders its input, output and weights. Converting the weights once and the
backbone's input per call removes those copies and makes pools and adds cheaper (measured
numbers: docs/benchmarks.md). Values are unchanged up to float rounding, and state dicts stay
loadable by NCHW models (``load_state_dict`` copies values whatever their strides).

mmcv's CPU RoIAlign reads its input as contiguous NCHW without checking (measured: a
channels-last input gives values off by up to 3.4), so the features entering every RoI
extractor are made NCHW-contiguous first; RoI heads run NCHW.

On AVX-512 CPUs, the oneDNN in torch 2.13 corrupts the heap in the weight gradient of a
channels-last 1x1 convolution with stride 2 and 2 to 15 input channels (measured: the
process dies with SIGSEGV or "double free or corruption"; 3x3 kernels, 1 or >= 16 input
channels, strides 3 and 4 and NCHW tensors are fine). Such convs (:func:`keeps_nchw`) stay
NCHW: their weights are not converted and their input is made NCHW-contiguous.
"""
from typing import List

import torch
import torch.nn as nn
from torch.utils.hooks import RemovableHandle


def _to_channels_last(module: nn.Module, args: tuple):
    """Forward pre-hook: the first positional input in NHWC when it is an image batch."""
    if args and isinstance(args[0], torch.Tensor) and args[0].dim() == 4:
        return (args[0].contiguous(memory_format=torch.channels_last),) + tuple(args[1:])
    return None


def _to_contiguous_features(module: nn.Module, args: tuple):
    """Forward pre-hook of an RoI extractor: its feature maps NCHW-contiguous."""
    return (tuple(f.contiguous() for f in args[0]),) + tuple(args[1:])


def keeps_nchw(module: nn.Module) -> bool:
    """Whether ``module`` is a conv that must stay NCHW: a 1x1 kernel with a stride > 1 and
    fewer than 16 input channels per group (oneDNN's channels-last weight gradient of such a
    conv corrupts memory on AVX-512 CPUs; see the module docstring)."""
    return (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1)
            and max(module.stride) > 1 and module.in_channels // module.groups < 16)


def _to_contiguous_input(module: nn.Module, args: tuple):
    """Forward pre-hook of a conv kept NCHW: its input NCHW-contiguous."""
    return (args[0].contiguous(),) + tuple(args[1:])


def convert_to_channels_last(model: nn.Module) -> List[RemovableHandle]:
    """Convert ``model``'s 4-D parameters and buffers to NHWC in place and hook its inputs.

    The parameters stay the same objects (an optimizer built before keeps them). The input
    of ``model.backbone`` (or of ``model`` itself when it has no backbone) is converted on
    every call; mmdet's RoI extractors get NCHW-contiguous features, and convs for which
    :func:`keeps_nchw` holds keep NCHW weights and get NCHW inputs.

    Args:
        model (nn.Module): A detector, classifier or backbone.

    Returns:
        list[RemovableHandle]: The forward pre-hooks; ``handle.remove()`` undoes the input
        conversion (the weights stay NHWC, which is harmless).
    """
    from mmdet.models.roi_heads.roi_extractors import BaseRoIExtractor
    model.to(memory_format=torch.channels_last)
    entry = getattr(model, 'backbone', model)
    handles = [entry.register_forward_pre_hook(_to_channels_last)]
    handles += [m.register_forward_pre_hook(_to_contiguous_features)
                for m in model.modules() if isinstance(m, BaseRoIExtractor)]
    for m in model.modules():
        if keeps_nchw(m):
            # (a 1x1 weight with channels-last strides counts as contiguous: copy it)
            m.weight.data = m.weight.data.clone(memory_format=torch.contiguous_format)
            handles.append(m.register_forward_pre_hook(_to_contiguous_input))
    return handles
