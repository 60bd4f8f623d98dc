"""The kernel initialisers of google/automl EfficientNet / EfficientDet, for PyTorch convs.

Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object Detection", CVPR 2020,
https://arxiv.org/abs/1911.09070. TF counts a depthwise kernel's fan-out per group
(``k * k * depth_multiplier``); ``torch.nn.init`` does not, which leaves a deep depthwise
network with a vanishing signal. The fans here follow TF.

They are mmengine weight initialisers (registered in ``mmengine.registry.WEIGHT_INITIALIZERS``
as ``'TFConv'``), so a module states them in its ``init_cfg`` like mmdet's ``Normal`` or
``Kaiming``::

    init_cfg = dict(type='TFConv', mode='variance_scaling', layer='Conv2d',
                    override=dict(type='TFConv', name='cls_pred', mode='variance_scaling',
                                  bias_prob=0.01))
"""
import math

import torch.nn as nn
from mmengine.model.weight_init import BaseInit, update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS

from .config_checks import check_choice

__all__ = ['TF_INITS', 'TFConvInit', 'tf_conv_init']

#: Valid ``mode`` values of :class:`TFConvInit` (``kind`` of :func:`tf_conv_init`).
TF_INITS = ('efficientnet', 'glorot_uniform', 'variance_scaling')


def _fans(conv: nn.Conv2d):
    receptive = conv.weight[0, 0].numel()
    fan_in = conv.weight.shape[1] * receptive
    fan_out = conv.weight.shape[0] * receptive // conv.groups
    return fan_in, fan_out


def _init_conv(m: nn.Conv2d, mode: str, bias: float = 0.0) -> None:
    fan_in, fan_out = _fans(m)
    if mode == 'efficientnet':
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
    elif mode == 'glorot_uniform':
        limit = math.sqrt(6.0 / max(1.0, fan_in + fan_out))
        nn.init.uniform_(m.weight, -limit, limit)
    else:
        nn.init.normal_(m.weight, 0.0, math.sqrt(1.0 / max(1.0, fan_in)))
    if m.bias is not None:
        nn.init.constant_(m.bias, bias)


def tf_conv_init(module: nn.Module, kind: str) -> None:
    """Initialise every ``nn.Conv2d`` in ``module`` as TF does and zero their biases.

    Args:
        module (nn.Module): Module whose convs are initialised.
        kind (str): ``'efficientnet'``: normal, std ``sqrt(2 / fan_out)`` (EfficientNet's
            ``conv_kernel_initializer``); ``'glorot_uniform'``: uniform within
            ``sqrt(6 / (fan_in + fan_out))`` (BiFPN); ``'variance_scaling'``: normal, std
            ``sqrt(1 / fan_in)`` (class / box nets).

    Raises:
        ConfigError: ``kind`` is not one of :data:`TF_INITS`.
    """
    check_choice('tf_conv_init', 'kind', kind, TF_INITS, 'a TF initialiser')
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            _init_conv(m, kind)


@WEIGHT_INITIALIZERS.register_module(name='TFConv')
class TFConvInit(BaseInit):
    """mmengine weight initialiser with TF's conv kernel initialisers (depthwise fans per group).

    Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object Detection", CVPR 2020,
    https://arxiv.org/abs/1911.09070; the modes are google/automl's initialisers (and effdet's
    ``_init_weight``).

    Args:
        mode (str): ``'efficientnet'``: normal, std ``sqrt(2 / fan_out)`` (EfficientNet's
            ``conv_kernel_initializer``); ``'glorot_uniform'``: uniform within
            ``sqrt(6 / (fan_in + fan_out))`` (BiFPN); ``'variance_scaling'``: normal, std
            ``sqrt(1 / fan_in)`` (class / box nets). Default: 'efficientnet'.
        bias (int | float): Value of the conv biases. Default: 0.
        bias_prob (float, optional): Set the biases to ``-log((1 - p) / p)`` (a class prior)
            instead. Default: None.
        layer (str | list[str], optional): Class names of the layers to initialise (a layer
            matches when its class or any base class has one of the names, e.g. ``'Conv2d'``
            also covers ``Conv2dTFSame``). Only convolutions are touched. Default: None.

    Example:
        >>> from mmengine.model import initialize
        >>> conv = nn.Conv2d(32, 32, 3, groups=32)
        >>> initialize(conv, dict(type='TFConv', mode='efficientnet', layer='Conv2d'))
    """

    def __init__(self, mode: str = 'efficientnet', **kwargs):
        super().__init__(**kwargs)
        check_choice('TFConv', 'mode', mode, TF_INITS, 'a TF initialiser')
        self.mode = mode

    def _matches(self, m: nn.Module) -> bool:
        if not isinstance(m, nn.Conv2d):
            return False
        return self.wholemodule or bool(
            set(self.layer) & {c.__name__ for c in type(m).__mro__})

    def __call__(self, module: nn.Module) -> None:
        for m in module.modules():
            if self._matches(m):
                _init_conv(m, self.mode, self.bias)
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())

    def _get_init_info(self) -> str:
        return f'{self.__class__.__name__}: mode={self.mode}, bias={self.bias}'
