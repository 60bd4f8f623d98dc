"""The kernel initialisers of google/automl EfficientNet / EfficientDet, for PyTorch convs.

Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object Detection", CVPR 2020,
https://arxiv.org/abs/1911.09070. TF counts a depthwise kernel's fan-out per group
(``k * k * depth_multiplier``); ``torch.nn.init`` does not, which leaves a deep depthwise
network with a vanishing signal. The fans here follow TF.
"""
import math

import torch.nn as nn

#: Valid ``kind`` values of :func:`tf_conv_init`.
TF_INITS = ('efficientnet', 'glorot_uniform', 'variance_scaling')


def _fans(conv: nn.Conv2d):
    receptive = conv.weight[0, 0].numel()
    fan_in = conv.weight.shape[1] * receptive
    fan_out = conv.weight.shape[0] * receptive // conv.groups
    return fan_in, fan_out


def tf_conv_init(module: nn.Module, kind: str) -> None:
    """Initialise every ``nn.Conv2d`` in ``module`` as TF does and zero their biases.

    Args:
        module (nn.Module): Module whose convs are initialised.
        kind (str): ``'efficientnet'``: normal, std ``sqrt(2 / fan_out)`` (EfficientNet's
            ``conv_kernel_initializer``); ``'glorot_uniform'``: uniform within
            ``sqrt(6 / (fan_in + fan_out))`` (BiFPN); ``'variance_scaling'``: normal, std
            ``sqrt(1 / fan_in)`` (class / box nets).
    """
    if kind not in TF_INITS:
        raise ValueError(f'kind={kind!r} is not a TF initialiser; valid choices: '
                         f"{', '.join(TF_INITS)}")
    for m in module.modules():
        if not isinstance(m, nn.Conv2d):
            continue
        fan_in, fan_out = _fans(m)
        if kind == 'efficientnet':
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        elif kind == 'glorot_uniform':
            limit = math.sqrt(6.0 / max(1.0, fan_in + fan_out))
            nn.init.uniform_(m.weight, -limit, limit)
        else:
            nn.init.normal_(m.weight, 0.0, math.sqrt(1.0 / max(1.0, fan_in)))
        if m.bias is not None:
            nn.init.zeros_(m.bias)
