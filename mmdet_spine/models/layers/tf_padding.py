"""TensorFlow 'SAME' padding, static when the input size is known.

TF pads ``max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)`` cells per dimension and puts
the odd cell at the end (bottom/right): a stride-2 3x3 conv on an even input is padded
(0, 1), not PyTorch's (1, 1). Weights trained in TF (TF Model Garden SpineNet, google/automl
EfficientDet) need this to reproduce TF's numbers.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

IntPair = Union[int, Sequence[int]]


def _pair(v: IntPair) -> Tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def tf_same_padding(size: int, kernel_size: int, stride: int = 1,
                    dilation: int = 1) -> Tuple[int, int]:
    """(before, after) padding that TF 'SAME' applies to one dimension of ``size``."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel_size - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def is_static_same(kernel_size: int, stride: int, dilation: int = 1) -> bool:
    """True when 'SAME' padding does not depend on the input size (stride 1)."""
    return stride == 1


class TFSamePad2d(nn.Module):
    """Pads a NCHW tensor the way TF 'SAME' does before a conv or pool.

    With ``input_size`` the padding is computed once here (static, exportable with constant
    pads); without it, it is computed from each input's shape.

    Args:
        kernel_size (int | tuple): Kernel of the following conv/pool.
        stride (int | tuple): Its stride.
        dilation (int | tuple): Its dilation. Default: 1.
        input_size (tuple, optional): (H, W) the layer will always see. Default: None.
        value (float): Fill value; ``-inf`` for max-pooling (TF ignores padded cells).
    """

    def __init__(self, kernel_size: IntPair, stride: IntPair, dilation: IntPair = 1,
                 input_size: Optional[IntPair] = None, value: float = 0.0):
        super().__init__()
        self.kernel_size, self.stride, self.dilation = _pair(kernel_size), _pair(stride), _pair(dilation)
        self.value = value
        self.static_pad = None
        if input_size is not None:
            self.static_pad = self._pads(_pair(input_size))

    def _pads(self, hw: Tuple[int, int]) -> Tuple[int, int, int, int]:
        ph = tf_same_padding(hw[0], self.kernel_size[0], self.stride[0], self.dilation[0])
        pw = tf_same_padding(hw[1], self.kernel_size[1], self.stride[1], self.dilation[1])
        return (pw[0], pw[1], ph[0], ph[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = self.static_pad if self.static_pad is not None else self._pads(x.shape[-2:])
        if not any(pads):
            return x
        return F.pad(x, pads, value=self.value)

    def extra_repr(self) -> str:
        return f'kernel_size={self.kernel_size}, stride={self.stride}, static_pad={self.static_pad}'
