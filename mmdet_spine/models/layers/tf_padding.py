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
from mmengine.registry import MODELS

from .config_checks import POSITIVE_INT, Each, OrNone, check_fields

IntPair = Union[int, Sequence[int]]

#: Valid kernel / stride / dilation / input size: a positive int or a pair of them.
_POSITIVE_PAIR = Each(POSITIVE_INT, length=2, scalar_ok=True)
_ARG_RULES = dict(kernel_size=_POSITIVE_PAIR, stride=_POSITIVE_PAIR, dilation=_POSITIVE_PAIR,
                  input_size=OrNone(_POSITIVE_PAIR))


def _pair(v: IntPair) -> Tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def tf_same_padding(size: int, kernel_size: int, stride: int = 1,
                    dilation: int = 1) -> Tuple[int, int]:
    """(before, after) padding that TF 'SAME' applies to one dimension of ``size``."""
    total = (math.ceil(size / stride) - 1) * stride + (kernel_size - 1) * dilation + 1 - size
    total = max(total, 0)
    return total // 2, total - total // 2


def is_static_same(kernel_size: int, stride: int, dilation: int = 1) -> bool:
    """True when 'SAME' padding does not depend on the input size (stride 1)."""
    return stride == 1


class TFSamePad2d(nn.Module):
    """Pads a NCHW tensor the way TF 'SAME' does before a conv or pool.

    With ``input_size`` the padding is computed once here (static, exportable with constant
    pads); without it, or for an input of another size, it is computed from the input's shape.

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
        check_fields(type(self).__name__, _ARG_RULES, dict(
            kernel_size=kernel_size, stride=stride, dilation=dilation, input_size=input_size))
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.dilation = _pair(dilation)
        self.value = value
        self.static_pad = None
        self.input_size = None
        if input_size is not None:
            self.input_size = _pair(input_size)
            self.static_pad = self._pads(self.input_size)

    def _pads(self, hw: Tuple[int, int]) -> Tuple[int, int, int, int]:
        ph = tf_same_padding(hw[0], self.kernel_size[0], self.stride[0], self.dilation[0])
        pw = tf_same_padding(hw[1], self.kernel_size[1], self.stride[1], self.dilation[1])
        return (pw[0], pw[1], ph[0], ph[1])

    def pads_for(self, hw: Tuple[int, int]) -> Tuple[int, int, int, int]:
        """(left, right, top, bottom) pads for an input of size ``hw`` (static if it was
        promised at build time)."""
        if self.static_pad is not None and tuple(hw) == self.input_size:
            return self.static_pad  # constants: what a trace or an export records
        # no size given at build time, or another size than promised: still exact
        return self._pads(tuple(hw))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = self.pads_for(tuple(x.shape[-2:]))
        if not any(pads):
            return x
        return F.pad(x, pads, value=self.value)

    def extra_repr(self) -> str:
        return f'kernel_size={self.kernel_size}, stride={self.stride}, static_pad={self.static_pad}'


def _static_symmetric(kernel_size: Tuple[int, int], stride: Tuple[int, int],
                      dilation: Tuple[int, int]) -> Optional[Tuple[int, int]]:
    """Symmetric padding equal to TF 'SAME' for any input size, or None if there is none."""
    if stride != (1, 1):
        return None
    pads = []
    for k, d in zip(kernel_size, dilation):
        total = (k - 1) * d
        if total % 2:
            return None
        pads.append(total // 2)
    return tuple(pads)


def _conv_pad_taps(pads: Tuple[int, int, int, int], kernel_size: Tuple[int, int],
                   dilation: Tuple[int, int]) -> Optional[Tuple[Tuple[int, int], Tuple[int, int]]]:
    """Copy-free form of a conv's TF pads ``(left, right, top, bottom)``, or None.

    Per dimension, pads ``(b, b)`` are the conv's own symmetric padding ``b``; pads
    ``(b, b + 1)`` (TF's odd cell at the end) equal symmetric padding ``b + 1`` with one zero
    tap prepended to the kernel: every window then starts one cell earlier, on a cell that the
    zero tap ignores, and the output size is the same. Returns ((pad_h, pad_w), (tap_h, tap_w))
    (tap 1 = prepend a zero tap), or None when some dimension has neither form (or is dilated).
    """
    padding, taps = [], []
    for (before, after), k, d in zip(((pads[2], pads[3]), (pads[0], pads[1])), kernel_size,
                                     dilation):
        if after == before:
            padding.append(before)
            taps.append(0)
        elif after == before + 1 and d == 1:
            padding.append(before + 1)
            taps.append(1)
        else:
            return None
    return tuple(padding), tuple(taps)


def _pool_pads(pads: Tuple[int, int, int, int], size: Tuple[int, int],
               kernel_size: Tuple[int, int], stride: Tuple[int, int]) -> Optional[Tuple]:
    """``(padding, ceil_mode)`` with which ``F.max_pool2d`` equals a max-pool after TF pads
    ``(left, right, top, bottom)`` filled with -inf, or None.

    PyTorch pads with -inf implicitly and, with ``ceil_mode``, keeps a last window that hangs
    over the end (TF's extra right/bottom cell) as long as it starts inside the input.
    """
    for ceil_mode in (False, True):
        padding = []
        for (before, after), n, k, s in zip(((pads[2], pads[3]), (pads[0], pads[1])), size,
                                            kernel_size, stride):
            if after not in (before, before + 1) or before > k // 2:
                return None
            span = n + 2 * before - k
            out = (-(-span // s) if ceil_mode else span // s) + 1
            if ceil_mode and (out - 1) * s >= n + before:
                out -= 1  # PyTorch drops a last window that starts in the padding
            if out != (n + before + after - k) // s + 1:
                break
            padding.append(before)
        else:
            return tuple(padding), ceil_mode
    return None


@MODELS.register_module('Conv2dTFSame')
class Conv2dTFSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow 'SAME' padding.

    Stride-1 convolutions with an odd (dilated) kernel get ordinary symmetric padding (that is
    what TF does for them, at no cost). Depthwise convolutions whose pads are ``(b, b + 1)``
    run without a padded copy of the input: their kernel gets a leading zero tap and symmetric
    padding ``b + 1`` (same windows, same result). Any other case pads asymmetrically as TF does; with
    ``input_size`` the pads are fixed here, once, so that the forward runs a constant pad
    (exportable, no per-call arithmetic), otherwise they are computed from each input.

    Registered in mmengine's ``MODELS`` as ``'Conv2dTFSame'`` so that mmcv's
    ``ConvModule(conv_cfg=dict(type='Conv2dTFSame', input_size=(h, w)))`` builds it. The
    ``padding`` argument is accepted for that interface and ignored: 'SAME' decides.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int | tuple): Kernel size.
        stride (int | tuple): Stride. Default: 1.
        padding: Ignored (TF 'SAME' is applied). Default: 0.
        dilation (int | tuple): Dilation. Default: 1.
        groups (int): Groups. Default: 1.
        bias (bool): Whether to add a bias. Default: True.
        input_size (tuple, optional): (H, W) this layer always sees. Default: None.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding=0, dilation: IntPair = 1, groups: int = 1,
                 bias: bool = True, input_size: Optional[IntPair] = None, **kwargs):
        check_fields('Conv2dTFSame', dict(_ARG_RULES, in_channels=POSITIVE_INT,
                                          out_channels=POSITIVE_INT, groups=POSITIVE_INT),
                     dict(in_channels=in_channels, out_channels=out_channels,
                          kernel_size=kernel_size, stride=stride, dilation=dilation,
                          groups=groups, input_size=input_size))
        kernel_size, stride, dilation = _pair(kernel_size), _pair(stride), _pair(dilation)
        symmetric = _static_symmetric(kernel_size, stride, dilation)
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding=symmetric or 0, dilation=dilation, groups=groups, bias=bias,
                         **kwargs)
        self.pad = None if symmetric is not None else TFSamePad2d(
            kernel_size, stride, dilation, input_size=input_size)
        # depthwise: pad the (tiny) kernel instead of copying the input (2-6x faster than
        # F.pad + conv on the CPU; for dense convs the larger kernel costs more)
        self._depthwise = groups > 1 and groups == in_channels
        self._copy_free = {}  # input (H, W) -> _conv_pad_taps(...), worked out once per size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is None:
            return super().forward(x)
        # Not when tracing: ONNX's Conv needs a kernel of known shape (an initializer).
        if self._depthwise and not torch.jit.is_tracing():
            hw = tuple(x.shape[-2:])
            if hw not in self._copy_free:
                self._copy_free[hw] = _conv_pad_taps(self.pad.pads_for(hw), self.kernel_size,
                                                     self.dilation)
            copy_free = self._copy_free[hw]
            if copy_free is not None:
                padding, (tap_h, tap_w) = copy_free
                weight = self.weight
                if tap_h or tap_w:
                    weight = F.pad(weight, (tap_w, 0, tap_h, 0))
                return F.conv2d(x, weight, self.bias, self.stride, padding, self.dilation,
                                self.groups)
        return super().forward(self.pad(x))


class MaxPool2dTFSame(nn.Module):
    """Max-pooling with TensorFlow 'SAME' padding (padded cells never win: they hold -inf).

    Where PyTorch's own pooling (symmetric -inf padding, ``ceil_mode`` for TF's extra cell at
    the end) gives the same windows, the input is pooled as it is, without a padded copy.

    Args:
        kernel_size (int | tuple): Pooling window.
        stride (int | tuple): Stride.
        input_size (tuple, optional): (H, W) this layer always sees; fixes the pads at build
            time. Default: None.
    """

    def __init__(self, kernel_size: IntPair, stride: IntPair,
                 input_size: Optional[IntPair] = None):
        super().__init__()
        check_fields(type(self).__name__, _ARG_RULES,
                     dict(kernel_size=kernel_size, stride=stride, input_size=input_size))
        self.pad = TFSamePad2d(kernel_size, stride, input_size=input_size, value=float('-inf'))
        self.pool = nn.MaxPool2d(kernel_size, stride)
        self._copy_free = {}  # input (H, W) -> _pool_pads(...), worked out once per size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing():  # ONNX export: the traced explicit pad, constant pads
            return self.pool(self.pad(x))
        hw = tuple(x.shape[-2:])
        if hw not in self._copy_free:
            self._copy_free[hw] = _pool_pads(self.pad.pads_for(hw), hw, self.pad.kernel_size,
                                             self.pad.stride)
        copy_free = self._copy_free[hw]
        if copy_free is None:
            return self.pool(self.pad(x))
        padding, ceil_mode = copy_free  # PyTorch's implicit -inf padding: no copy
        return F.max_pool2d(x, self.pool.kernel_size, self.pool.stride, padding,
                            ceil_mode=ceil_mode)
