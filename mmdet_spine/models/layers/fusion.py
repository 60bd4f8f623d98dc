"""Fusion of several same-shape feature maps into one.

One implementation serves both SpineNet (merging a block's parents; the TF legacy
SpineNet's optional weighted fusion) and BiFPN (Tan et al., "EfficientDet: Scalable
and Efficient Object Detection", CVPR 2020, https://arxiv.org/abs/1911.09070,
Sec. 3.3 "fast normalized fusion").
"""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet_spine.errors import ConfigError

from .config_checks import POSITIVE, POSITIVE_INT, check_fields

#: Valid values of ``fusion`` wherever a module takes one.
FUSION_METHODS = ('sum', 'weighted', 'softmax')

#: Accepted spellings of the methods above (effdet / automl names).
_ALIASES = {'fast_attn': 'weighted', 'fastattn': 'weighted', 'attn': 'softmax'}


def check_fusion_method(method: str, field: str = 'fusion', owner: str = '') -> str:
    """Return the canonical fusion name or raise a ``ConfigError`` naming the choices
    (prefixed with ``owner``, the module's name, when given)."""
    method = _ALIASES.get(method, method) if isinstance(method, str) else method
    if method not in FUSION_METHODS:
        pre = f'{owner}: ' if owner else ''
        raise ConfigError(f'{pre}{field}={method!r} is not a fusion method; valid choices: '
                          f"{', '.join(FUSION_METHODS)} (aliases: {', '.join(_ALIASES)})")
    return method


class FeatureFusion(nn.Module):
    """Fuse ``num_inputs`` same-shape tensors.

    - ``sum``: plain element-wise sum, no parameters.
    - ``weighted``: fast normalized fusion, ``sum_i relu(w_i) x_i / (sum_j relu(w_j) + eps)``,
      one learned scalar per input initialised to 1 (EfficientDet Eq. 3; TF legacy SpineNet's
      ``weighted_fusion``).
    - ``softmax``: ``sum_i softmax(w)_i x_i`` (EfficientDet's softmax-based fusion).

    Args:
        num_inputs (int): Number of tensors fused, >= 1.
        method (str): One of :data:`FUSION_METHODS`. Default: 'sum'.
        eps (float): Stabiliser of ``weighted``, > 0. Default: 1e-4.

    Example:
        >>> fuse = FeatureFusion(2, 'weighted')
        >>> fuse([torch.ones(1, 8, 4, 4), torch.ones(1, 8, 4, 4)]).shape
        torch.Size([1, 8, 4, 4])
    """

    #: Valid range of each numeric argument.
    arg_rules = dict(num_inputs=POSITIVE_INT, eps=POSITIVE)

    def __init__(self, num_inputs: int, method: str = 'sum', eps: float = 1e-4):
        super().__init__()
        name = type(self).__name__
        check_fields(name, self.arg_rules, dict(num_inputs=num_inputs, eps=eps))
        self.num_inputs = num_inputs
        self.method = check_fusion_method(method, 'method', owner=name)
        self.eps = eps
        if self.method != 'sum':
            self.weight = nn.Parameter(torch.ones(num_inputs))

    def normalized_weights(self) -> torch.Tensor:
        """The per-input factors actually applied (ones for ``sum``)."""
        if self.method == 'sum':
            return torch.ones(self.num_inputs)
        if self.method == 'weighted':
            w = F.relu(self.weight)
            return w / (w.sum() + self.eps)
        return torch.softmax(self.weight, dim=0)

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(inputs) != self.num_inputs:
            raise ValueError(f'{type(self).__name__} expects {self.num_inputs} inputs, '
                             f'got {len(inputs)}')
        if self.method == 'sum':
            out = inputs[0]
            for x in inputs[1:]:
                out = out + x
            return out
        w = self.normalized_weights()
        out = inputs[0] * w[0]
        for i in range(1, self.num_inputs):
            out = out + inputs[i] * w[i]
        return out

    def extra_repr(self) -> str:
        return f'num_inputs={self.num_inputs}, method={self.method!r}'
