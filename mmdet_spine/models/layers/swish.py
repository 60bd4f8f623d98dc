"""Swish (``x * sigmoid(x)``, Ramachandran et al. 2017, "Searching for Activation Functions"):
which registered activation to use, and why.

mmcv registers two activations with this math: ``'Swish'`` (``x * torch.sigmoid(x)``, two
kernels and a temporary per call: 20 % of a SpineNet-49 forward on the CPU) and ``'SiLU'``
(``torch.nn.SiLU``, one kernel, in place when ``ConvModule`` asks). Our configs and module
defaults use ``act_cfg=dict(type='SiLU')`` (:data:`SWISH`); mmcv's ``'Swish'`` stays mmcv's
(nothing is re-registered), so a config that asks for it gets exactly what mmcv builds. The
two agree to float rounding (within 1e-6 absolute for |x| <= 40) and have no parameters, so
checkpoints are interchangeable.
"""
import torch.nn as nn

__all__ = ['SWISH', 'Swish']

#: The activation config of the one-kernel swish (mmcv's registration of ``torch.nn.SiLU``).
SWISH = dict(type='SiLU')

#: The class ``dict(type='SiLU')`` builds (``torch.nn.SiLU``); not registered under any name
#: by mmdet-spine.
Swish = nn.SiLU
