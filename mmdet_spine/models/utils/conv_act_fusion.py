"""Fuse each activation into the convolution before it, for CPU inference (oneDNN post-ops).

In eager PyTorch a conv and the activation after it are two kernels: the activation reads and
writes the whole feature map again. oneDNN, which runs PyTorch's CPU convolutions, applies an
activation as a *post-op* inside the convolution kernel, while the output is still in cache;
TensorFlow's graph optimiser (Grappler's remapper) and inductor's freezing pass do exactly
this for their graphs. :func:`fuse_conv_act_for_inference` does it for an eager model: every
``nn.Conv2d`` whose output goes *only* into an activation module becomes a
:class:`FusedConvAct2d` that calls ``torch.ops.mkldnn._convolution_pointwise`` with that
activation as its post-op, and the activation module becomes an ``nn.Identity``. In our
residual blocks (:class:`~mmdet_spine.models.layers.residual_blocks.ResidualBlock`,
``BottleneckBlock``) the last conv also takes the shortcut: ``act(conv(x) + shortcut)`` is
one op (oneDNN's binary ``add`` post-op), where eager PyTorch ran a conv, an add and an
activation over the block's output.

Which activation follows which conv is read from the data flow of one example forward: a
``TorchFunctionMode`` sees every op, so a conv output that anything else also reads (a
residual add, a second branch) is never fused. Run it after
:func:`~mmdet_spine.models.utils.fuse_conv_bn_for_inference` (the batch norm between conv
and activation is folded away first). Inference only: the fused op has no gradient, so with
gradients enabled the module computes the conv and the activation separately.
"""
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves


def _post_op(act: nn.Module, identity_ok: bool = False) -> Optional[Tuple[str, list, str]]:
    """oneDNN's post-op ``(attr, scalars, algorithm)`` computing ``act``, or None
    (``nn.Identity`` is ``'none'`` when ``identity_ok``)."""
    if identity_ok and isinstance(act, nn.Identity):
        return 'none', [], ''
    if isinstance(act, nn.ReLU):
        return 'relu', [], ''
    if isinstance(act, nn.SiLU):
        return 'swish', [], ''
    if isinstance(act, nn.Sigmoid):
        return 'sigmoid', [], ''
    if isinstance(act, nn.Hardswish):
        return 'hardswish', [], ''
    if isinstance(act, nn.Hardtanh):  # ReLU6 is a Hardtanh(0, 6)
        return 'hardtanh', [float(act.min_val), float(act.max_val)], ''
    if isinstance(act, nn.LeakyReLU):
        return 'leaky_relu', [float(act.negative_slope)], ''
    if isinstance(act, nn.GELU):
        return 'gelu', [], act.approximate
    return None


class FusedConvAct2d(nn.Module):
    """A ``Conv2d`` followed by an activation, run as one oneDNN convolution with a post-op;
    with ``add=True``, ``act(conv(x) + other)``.

    Holds the conv's own weight and bias (same parameters and state-dict keys); the
    activation is kept too, for the unfused path taken when gradients are enabled.

    Args:
        conv (nn.Conv2d): The convolution (numeric padding, 'zeros' padding mode).
        act (nn.Module): The activation after it; :func:`_post_op` must map it
            (``nn.Identity`` too when ``add``).
        add (bool): ``forward(x, other)`` adds ``other`` (of the conv output's shape, not
            broadcast) before the activation. Default: False.
    """

    def __init__(self, conv: nn.Conv2d, act: nn.Module, add: bool = False):
        super().__init__()
        post_op = _post_op(act, identity_ok=add)
        if post_op is None or not fusable_conv(conv):
            raise ValueError(f'cannot fuse {conv} with {act}')
        self.weight, self.bias = conv.weight, conv.bias
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.act, self.add = act, add
        self.attr, self.scalars, self.algorithm = post_op
        # oneDNN's add post-op takes no activation after it but ReLU (in PyTorch's op): with
        # another activation the op adds, and the activation runs right after it
        self.act_after_add = self.attr not in ('none', 'relu')
        self.add_post_op = ((None, [], '') if self.act_after_add or self.attr == 'none'
                            else (self.attr, self.scalars, self.algorithm))

    def forward(self, x: torch.Tensor, other: Optional[torch.Tensor] = None) -> torch.Tensor:
        if (other is None) == self.add:
            raise TypeError(f'{type(self).__name__}(add={self.add}) takes '
                            f'{"x and other" if self.add else "x only"}')
        if torch.is_grad_enabled() or x.device.type != 'cpu' or x.dtype != self.weight.dtype:
            out = F.conv2d(x, self.weight, self.bias, self.stride, self.padding,
                           self.dilation, self.groups)
            return self.act(out if other is None else out + other)
        if other is None:
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.weight, self.bias, self.padding, self.stride, self.dilation,
                self.groups, self.attr, self.scalars, self.algorithm)
        out = torch.ops.mkldnn._convolution_pointwise.binary(
            x, other, self.weight, self.bias, self.padding, self.stride, self.dilation,
            self.groups, 'add', None, *self.add_post_op)
        return self.act(out) if self.act_after_add else out

    def extra_repr(self) -> str:
        return (f'{self.weight.shape[1] * self.groups}, {self.weight.shape[0]}, '
                f'kernel_size={tuple(self.weight.shape[2:])}, stride={tuple(self.stride)}, '
                f'padding={tuple(self.padding)}, post_op={self.attr}')


def fusable_conv(conv: nn.Module) -> bool:
    """A plain 2-D conv oneDNN's fused op takes: numeric padding, zero padding mode."""
    return (type(conv) is nn.Conv2d and conv.padding_mode == 'zeros'
            and not isinstance(conv.padding, str))


class _DataFlow(TorchFunctionMode):
    """Counts, for each tracked tensor, the ops that read it and produce a tensor (shape
    queries and other metadata reads produce none and are not uses)."""

    def __init__(self):
        super().__init__()
        self.step = 0
        self.tracked: Dict[int, dict] = {}

    def track(self, tensor: torch.Tensor, record: dict) -> None:
        record.update(tensor=tensor, uses=[])  # the reference keeps the id unique
        self.tracked[id(tensor)] = record

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(isinstance(o, torch.Tensor) for o in tree_leaves(out)):
            self.step += 1
            for a in tree_leaves((args, kwargs or {})):
                rec = self.tracked.get(id(a)) if isinstance(a, torch.Tensor) else None
                if rec is not None and rec['tensor'] is a:
                    rec['uses'].append(self.step)
        return out


def find_conv_act_pairs(model: nn.Module, example: Callable[[nn.Module], object]
                        ) -> List[Tuple[nn.Conv2d, nn.Module]]:
    """(conv, activation) module pairs where every call of the conv feeds only that
    activation and every call of the activation takes such a conv output, found by running
    ``example(model)`` once.

    A conv output read by anything besides the activation (before it, or after it unless
    the activation works in place), a conv followed by different activations, and an
    activation that also runs on other tensors are all left out.
    """
    flow = _DataFlow()
    conv_calls: List[dict] = []
    act_calls: List[dict] = []

    def after_conv(conv, inputs, output):
        record = dict(conv=conv)
        flow.track(output, record)
        conv_calls.append(record)

    def before_act(act, inputs):
        act_calls.append(dict(act=act, input=inputs[0] if inputs else None,
                              start=flow.step))

    def after_act(act, inputs, output):
        call = next(c for c in reversed(act_calls) if c['act'] is act and 'end' not in c)
        call.update(end=flow.step, in_place=output is call['input'])

    hooks = []
    for m in model.modules():
        if fusable_conv(m):
            hooks.append(m.register_forward_hook(after_conv))
        elif _post_op(m) is not None:
            hooks.append(m.register_forward_pre_hook(before_act))
            hooks.append(m.register_forward_hook(after_act))
    try:
        with torch.no_grad(), flow:
            example(model)
    finally:
        for h in hooks:
            h.remove()

    calls_on: Dict[int, List[dict]] = {}  # id(input tensor) -> act calls on it
    for c in act_calls:
        calls_on.setdefault(id(c['input']), []).append(c)
    verdict: Dict[nn.Module, Optional[nn.Module]] = {}  # conv -> its act, None: not fusable
    for rec in conv_calls:
        uses = rec['uses']
        call = next((c for c in calls_on.get(id(rec['tensor']), ())
                     if 'end' in c and c['input'] is rec['tensor']
                     and uses and c['start'] < uses[0] <= c['end']), None)
        ok = call is not None and (call['in_place'] or len(uses) == 1)
        rec['act'] = call['act'] if ok else None
        conv = rec['conv']
        verdict[conv] = rec['act'] if verdict.get(conv, rec['act']) is rec['act'] else None
    calls_of: Dict[nn.Module, int] = {}  # act -> its calls
    for c in act_calls:
        calls_of[c['act']] = calls_of.get(c['act'], 0) + 1
    fed: Dict[nn.Module, int] = {}  # act -> its calls on the output of a fusable conv
    for rec in conv_calls:
        if verdict[rec['conv']] is not None:
            fed[rec['act']] = fed.get(rec['act'], 0) + 1
    return [(conv, act) for conv, act in verdict.items()
            if act is not None and fed[act] == calls_of[act]]


def fuse_conv_act_for_inference(model: nn.Module,
                                example: Callable[[nn.Module], object]) -> int:
    """Replace every (conv, activation) pair of :func:`find_conv_act_pairs` by a
    :class:`FusedConvAct2d` (and the activation by ``nn.Identity``), and give every residual
    block whose last norm is folded a fused last conv + shortcut add + activation, in place.

    Call it on an eval-mode model whose batch norms are folded
    (:func:`~mmdet_spine.models.utils.fuse_conv_bn_for_inference`). Outputs are unchanged up
    to float rounding (the benchmark and ``tools/test.py --fuse-conv-act`` check them). The
    result is for inference only: residual blocks then skip drop path.

    Args:
        model (nn.Module): The model, modified in place.
        example (callable): ``example(model)`` runs one forward.

    Returns:
        int: The number of convs fused with what follows them.
    """
    from ..layers.residual_blocks import _ResBlockBase
    pairs = find_conv_act_pairs(model, example)
    fused = {id(conv): FusedConvAct2d(conv, act) for conv, act in pairs}
    acts = {id(act) for _, act in pairs}
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if id(child) in fused:
                parent._modules[name] = fused[id(child)]
            elif id(child) in acts:
                parent._modules[name] = nn.Identity()
    blocks = 0
    for block in model.modules():
        if (isinstance(block, _ResBlockBase) and not block.fused_add
                and fusable_conv(block.last_conv) and isinstance(block.last_norm, nn.Identity)
                and _post_op(block.act, identity_ok=True) is not None):
            setattr(block, block.last_conv_name,
                    FusedConvAct2d(block.last_conv, block.act, add=True))
            block.act, block.fused_add = nn.Identity(), True
            blocks += 1
    return len(pairs) + blocks
