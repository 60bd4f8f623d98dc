"""Say which checkpoint weights were skipped for a shape mismatch, and why, never silently.

Loading a checkpoint into a model whose head differs (e.g. a COCO model with 80 classes into
a 3-class model, via ``load_from`` or ``init_cfg=dict(type='Pretrained')``), mmengine keeps the
model's own initialisation for those parameters and mentions it inside a long
"do not match exactly" message. :func:`install_shape_mismatch_report` makes mmengine's
``load_state_dict`` first log one WARNING that lists every skipped key with the checkpoint's
and the model's shape.
"""
import logging
from typing import List, Tuple

import torch
from mmengine.logging import print_log

__all__ = ['shape_mismatches', 'install_shape_mismatch_report']


def shape_mismatches(module: torch.nn.Module, state_dict: dict) -> List[Tuple[str, tuple, tuple]]:
    """``(key, checkpoint shape, model shape)`` for every tensor whose shapes differ.

    Args:
        module (nn.Module): The model (wrappers with ``.module`` are unwrapped).
        state_dict (dict): The checkpoint's state dict.
    """
    if hasattr(module, 'module') and isinstance(module.module, torch.nn.Module):
        module = module.module
    own = module.state_dict()
    out = []
    for key, value in state_dict.items():
        if key in own and isinstance(value, torch.Tensor) and value.shape != own[key].shape:
            out.append((key, tuple(value.shape), tuple(own[key].shape)))
    return out


def _report(module, state_dict, strict, logger) -> None:
    bad = shape_mismatches(module, state_dict)
    if not bad:
        return
    lines = '\n'.join(f'  {k}: checkpoint {list(c)} vs model {list(m)}' for k, c, m in bad)
    verdict = ('loading fails (strict=True)' if strict else
               'these weights were NOT loaded; the model keeps its own initialisation for them')
    print_log(f'Checkpoint/model shape mismatch in {len(bad)} tensors, {verdict} (e.g. a head '
              f'trained for a different num_classes):\n{lines}',
              logger=logger or 'current', level=logging.WARNING)


_installed = False


def install_shape_mismatch_report() -> None:
    """Wrap ``mmengine.runner.checkpoint.load_state_dict`` (used by ``load_from``, ``--resume``
    and ``Pretrained`` init) so shape mismatches are listed first. Idempotent."""
    global _installed
    if _installed:
        return
    from mmengine.runner import checkpoint as ckpt
    original = ckpt.load_state_dict

    def load_state_dict(module, state_dict, strict=False, logger=None):
        _report(module, state_dict, strict, logger)
        return original(module, state_dict, strict=strict, logger=logger)

    load_state_dict.__doc__ = original.__doc__
    ckpt.load_state_dict = load_state_dict
    _installed = True
