"""Fold batch norms into the preceding convolutions for inference.

In eval mode a batch norm is a per-channel affine map, ``y = (x - mean) * g / sqrt(var + eps)
+ b``; applied to a conv's output it equals the same conv with its weights scaled by ``g /
sqrt(var + eps)`` and a shifted bias (Ioffe & Szegedy 2015; the usual deployment fold). Which
norm follows which conv is read from the data flow of one example forward (hooks), or, without
an example, from module order as mmcv's :func:`mmcv.cnn.fuse_conv_bn` does. Two of our heads
need help first:

- :class:`~mmdet_spine.models.dense_heads.EfficientDetSepBNHead` shares one separable conv
  across all levels and keeps a BN per level in a separate list: each level gets its own copy
  of the conv with that level's BN folded into the pointwise weights (more parameters, same
  FLOPs, one op fewer per conv);
- mmdet's ``RetinaSepBNHead`` (and our ``RetinaSepBNActHead``) ties one ``nn.Conv2d`` object
  into every level's ``ConvModule``: folding would scale it once per level, so the tied convs
  are copied apart first.

The result is for inference only (eval mode; training it would train different parameters).
"""
import copy
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn
from mmengine.model import revert_sync_batchnorm
from torch.nn.modules.batchnorm import _BatchNorm


def count_norm_layers(model: nn.Module) -> int:
    """Number of batch-norm modules (``_BatchNorm`` / ``SyncBatchNorm``) left in ``model``."""
    return sum(isinstance(m, (_BatchNorm, nn.SyncBatchNorm)) for m in model.modules())


@torch.no_grad()
def _fold_bn_into_conv(conv: nn.Conv2d, bn: nn.Module) -> None:
    """Fold eval-mode ``bn`` into ``conv`` in place (conv gains a bias if it had none)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight = nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1))
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)


def _unshare_level_norm_heads(model: nn.Module) -> int:
    """Rewrite every ``EfficientDetSepBNHead`` branch so that each level runs its own copy of
    the shared separable conv with that level's BN folded in; returns the number folded.

    The head computes ``act(norms[i][level](convs[i](x)))``; afterwards ``convs[i]`` is an
    identity and ``norms[i][level]`` the fused per-level separable conv, so the head's own
    forward is untouched.
    """
    from ..dense_heads.efficientdet_head import EfficientDetSepBNHead
    folded = 0
    for head in model.modules():
        if not isinstance(head, EfficientDetSepBNHead):
            continue
        for convs, norms in ((head.cls_convs, head.cls_norms), (head.reg_convs, head.reg_norms)):
            for i, (conv, level_norms) in enumerate(zip(convs, norms)):
                if isinstance(conv, nn.Identity):
                    continue  # already fused
                fused = nn.ModuleList()
                for bn in level_norms:
                    level_conv = copy.deepcopy(conv)
                    _fold_bn_into_conv(level_conv.pointwise_conv.conv, bn)
                    fused.append(level_conv)
                    folded += 1
                norms[i] = fused
                convs[i] = nn.Identity()
    return folded


def _untie_shared_convs(model: nn.Module) -> int:
    """Replace every second and later occurrence of one ``nn.Conv2d`` object in the module
    tree by a copy (mmdet's ``RetinaSepBNHead`` ties its tower convs across levels); returns
    the number of copies made."""
    seen, copies = set(), 0
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if not isinstance(child, nn.Conv2d):
                continue
            if id(child) in seen:
                parent._modules[name] = copy.deepcopy(child)
                copies += 1
            else:
                seen.add(id(child))
    return copies


def find_conv_bn_pairs(model: nn.Module, example: Callable[[nn.Module], object]
                       ) -> List[Tuple[nn.Conv2d, nn.Module]]:
    """(conv, bn) pairs where the bn's input *is* the conv's output, found by running
    ``example(model)`` once with hooks (data flow, not module order, decides).

    A conv that feeds more than one norm, or a norm fed by more than one conv, is left out:
    folding could not serve both.
    """
    produced: Dict[int, Tuple[nn.Conv2d, torch.Tensor]] = {}
    feeds: Dict[nn.Module, set] = {}

    def after_conv(conv, inputs, output):
        produced[id(output)] = (conv, output)  # the tensor is kept, so its id stays unique

    def before_norm(norm, inputs):
        hit = produced.get(id(inputs[0]))
        feeds.setdefault(norm, set()).add(hit[0] if hit is not None and hit[1] is inputs[0]
                                          else None)

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(after_conv))
        elif isinstance(m, (_BatchNorm, nn.SyncBatchNorm)):
            hooks.append(m.register_forward_pre_hook(before_norm))
    try:
        with torch.no_grad():
            example(model)
    finally:
        for h in hooks:
            h.remove()
    conv_uses: Dict[nn.Module, int] = {}
    for norm, convs in feeds.items():
        if len(convs) == 1 and None not in convs:
            conv = next(iter(convs))
            conv_uses[conv] = conv_uses.get(conv, 0) + 1
    return [(next(iter(convs)), norm) for norm, convs in feeds.items()
            if len(convs) == 1 and None not in convs and conv_uses[next(iter(convs))] == 1]


def fuse_conv_bn_for_inference(model: nn.Module,
                               example: Optional[Callable[[nn.Module], object]] = None
                               ) -> nn.Module:
    """Fold every batch norm that directly follows a conv into it; returns the model in eval
    mode.

    SyncBN is reverted to BN first (mmengine's ``revert_sync_batchnorm``), EfficientDet's
    per-level head norms are folded into per-level conv copies and tied convs are untied.
    Then, with ``example`` (a callable running the model once, e.g. ``lambda m:
    m._forward(x)``), the pairs come from the data flow of that run
    (:func:`find_conv_bn_pairs`) -- the safe way; without it mmcv's
    :func:`~mmcv.cnn.fuse_conv_bn` pairs a norm with the conv registered just before it in
    the same parent, which is right for ``ConvModule``/``Sequential`` but not for every
    module (mmdet's ``FCNMaskHead`` registers ``upsample_norm``-like layers out of order).
    Outputs in eval mode are unchanged up to float rounding (tested within 1e-4). Norms that
    follow no ``nn.Conv2d`` (e.g. a deformable conv) stay; :func:`count_norm_layers` says how
    many.

    Args:
        model (nn.Module): A built model (detector, backbone, ...).
        example (callable, optional): ``example(model)`` runs one forward.

    Returns:
        nn.Module: The fused model (``model`` itself, modified, unless it held SyncBN, whose
        reversion builds a new top module), in eval mode.
    """
    model = revert_sync_batchnorm(model).eval()
    _unshare_level_norm_heads(model)
    _untie_shared_convs(model)
    if example is None:
        with torch.no_grad():
            fuse_conv_bn(model)
        return model.eval()
    pairs = find_conv_bn_pairs(model, example)
    fused = {id(norm) for _, norm in pairs}
    for conv, norm in pairs:
        _fold_bn_into_conv(conv, norm)
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if id(child) in fused:
                parent._modules[name] = nn.Identity()
    return model.eval()
