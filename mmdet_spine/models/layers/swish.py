"""Swish (``x * sigmoid(x)``, Ramachandran et al. 2017, "Searching for Activation Functions")
as one fused kernel.

mmcv's ``Swish`` computes ``x * torch.sigmoid(x)``: two kernels and a temporary per call (20 %
of a SpineNet-49 forward on the CPU). ``torch.nn.SiLU`` is the same function in one kernel.
Importing :mod:`mmdet_spine` registers :class:`Swish` below under the name ``'Swish'`` in
mmengine's ``MODELS`` in place of mmcv's class, so every ``act_cfg=dict(type='Swish')`` (ours,
mmcv's ``ConvModule``, mmdet's heads) builds the one-kernel version. The two agree to float
rounding (measured: within 1e-6 absolute for inputs up to |x| = 40); it has no parameters, so
checkpoints are unaffected. (``'HSwish'`` already builds ``torch.nn.Hardswish`` in mmcv 2.x.)
"""
import torch.nn as nn
from mmengine.registry import MODELS


@MODELS.register_module('Swish', force=True)
class Swish(nn.SiLU):
    """Swish / SiLU activation, ``x * sigmoid(x)``, computed by ``torch.nn.SiLU``.

    Replaces mmcv's two-op ``Swish`` in the registry (same name, same math).

    Args:
        inplace (bool): Overwrite the input. Default: False (as mmcv's ``Swish``, which
            ``ConvModule`` builds without ``inplace``).
    """

    def __init__(self, inplace: bool = False):
        super().__init__(inplace=inplace)
