"""Build-time checks of ``norm_cfg``/``act_cfg`` that name the field, the value and the choices.

mmcv reports an unknown norm type as ``KeyError: 'Cannot find None in registry'`` and an
unknown activation without the valid names; these checks run first in our modules'
constructors and say what is wrong.
"""
from typing import List, Optional

import torch.nn as nn
from mmengine.registry import MODELS

_NORM_BASES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def _registered(predicate) -> List[str]:
    names = []
    for name, cls in MODELS.module_dict.items():
        try:
            if isinstance(cls, type) and predicate(cls):
                names.append(name)
        except TypeError:
            continue
    return sorted(names, key=str.lower)


def norm_layer_names() -> List[str]:
    """Names usable as ``norm_cfg['type']`` (mmcv/mmengine's registered normalisation layers)."""
    return _registered(lambda c: issubclass(c, _NORM_BASES))


def act_layer_names() -> List[str]:
    """Names usable as ``act_cfg['type']`` (registered activation layers)."""
    def is_act(c):
        return issubclass(c, nn.Module) and (
            c.__module__.startswith(('torch.nn.modules.activation', 'mmcv.cnn.bricks.activation',
                                     'mmcv.cnn.bricks.swish', 'mmcv.cnn.bricks.hswish',
                                     'mmcv.cnn.bricks.hsigmoid'))
            or c.__name__ in ('Swish', 'HSwish', 'HSigmoid', 'GELU', 'SiLU'))
    return _registered(is_act)


def _lookup(name):
    """The class registered as ``name`` in the current scope or mmengine's root, or None."""
    try:
        return MODELS.get(name)
    except Exception:  # noqa: BLE001  (a malformed scope prefix etc.)
        return None


def _check(cfg, field: str, owner: str, kind: str, choices: List[str]) -> None:
    if cfg is None:
        return
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f"{owner}: {field}={cfg!r} must be a dict with a 'type' key (e.g. "
                         f"dict(type='{choices[0] if choices else '?'}'))")
    t = cfg['type']
    if isinstance(t, type):
        return  # a class given directly: mmcv builds it as it is
    if t not in choices and _lookup(t) is None:
        raise ValueError(f"{owner}: {field}.type={t!r} is not {kind}; valid choices: "
                         f"{', '.join(choices)}")


def check_norm_cfg(norm_cfg: Optional[dict], owner: str, field: str = 'norm_cfg') -> None:
    """Raise ``ValueError`` unless ``norm_cfg`` is None or names a registered norm layer.

    Args:
        norm_cfg (dict, optional): The config to check.
        owner (str): Module name for the message (e.g. ``'SpineNet'``).
        field (str): Argument name for the message. Default: ``'norm_cfg'``.
    """
    _check(norm_cfg, field, owner, 'a normalization layer', norm_layer_names())


def check_act_cfg(act_cfg: Optional[dict], owner: str, field: str = 'act_cfg') -> None:
    """Raise ``ValueError`` unless ``act_cfg`` is None or names a registered activation.

    Args:
        act_cfg (dict, optional): The config to check.
        owner (str): Module name for the message.
        field (str): Argument name for the message. Default: ``'act_cfg'``.
    """
    _check(act_cfg, field, owner, 'an activation layer', act_layer_names())
