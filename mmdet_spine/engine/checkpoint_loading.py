"""Say which checkpoint weights were skipped for a shape mismatch, and why, never silently.

Loading a checkpoint into a model whose head differs (e.g. a COCO model with 80 classes into
a 3-class model via ``load_from``), mmengine keeps the model's own initialisation for those
parameters and mentions it inside a long "do not match exactly" message.
:class:`ShapeMismatchReportHook` (which :class:`~mmdet_spine.engine.SpineRunner` always has)
logs, before the weights are loaded, one WARNING that lists every skipped key with the
checkpoint's and the model's shape. It runs at mmengine's ``after_load_checkpoint`` hook
point, so it covers ``load_from`` and ``--resume`` (``init_cfg=dict(type='Pretrained')`` is
loaded by mmengine's initialiser outside the runner and keeps mmengine's own message).
"""
import logging
import re
from collections import OrderedDict
from typing import List, Sequence, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmdet.registry import HOOKS

__all__ = ['shape_mismatches', 'report_shape_mismatches', 'ShapeMismatchReportHook']


def shape_mismatches(module: torch.nn.Module, state_dict: dict) -> List[Tuple[str, tuple, tuple]]:
    """``(key, checkpoint shape, model shape)`` for every tensor whose shapes differ.

    Args:
        module (nn.Module): The model (wrappers with ``.module`` are unwrapped).
        state_dict (dict): The checkpoint's state dict.
    """
    if is_model_wrapper(module) or (hasattr(module, 'module') and
                                    isinstance(module.module, torch.nn.Module)):
        module = module.module
    own = module.state_dict()
    out = []
    for key, value in state_dict.items():
        if key in own and isinstance(value, torch.Tensor) and value.shape != own[key].shape:
            out.append((key, tuple(value.shape), tuple(own[key].shape)))
    return out


def report_shape_mismatches(module: torch.nn.Module, state_dict: dict, strict: bool = False,
                            logger=None) -> int:
    """Log one WARNING listing every tensor of ``state_dict`` whose shape differs from the
    model's; returns how many there were (nothing is logged for 0)."""
    bad = shape_mismatches(module, state_dict)
    if not bad:
        return 0
    lines = '\n'.join(f'  {k}: checkpoint {list(c)} vs model {list(m)}' for k, c, m in bad)
    verdict = ('loading fails (strict=True)' if strict else
               'these weights were NOT loaded; the model keeps its own initialisation for them')
    print_log(f'Checkpoint/model shape mismatch in {len(bad)} tensors, {verdict} (e.g. a head '
              f'trained for a different num_classes):\n{lines}',
              logger=logger or 'current', level=logging.WARNING)
    return len(bad)


@HOOKS.register_module()
class ShapeMismatchReportHook(Hook):
    """List the checkpoint tensors that cannot be loaded for their shape, before loading.

    Args:
        revise_keys (sequence of (pattern, replacement)): Applied to the checkpoint's keys
            first, as ``Runner.load_checkpoint`` does. Default: strip ``module.``.
    """

    priority = 'VERY_LOW'

    def __init__(self, revise_keys: Sequence[Tuple[str, str]] = ((r'^module\.', ''),)):
        self.revise_keys = [tuple(p) for p in revise_keys]

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else {}
        if not isinstance(state, dict):
            return
        for pattern, replacement in self.revise_keys:
            state = OrderedDict((re.sub(pattern, replacement, k), v) for k, v in state.items())
        report_shape_mismatches(runner.model, state, logger=runner.logger)
