"""Build-time checks of module arguments that name the module, the field, the value and the
valid range or choices, raised as :class:`~mmdet_spine.errors.ConfigError`.

Torch reports a width of 0 as ``RuntimeError: Given groups=1, weight of size [0, 64, 1, 1]
...`` deep inside a forward, mmcv an unknown norm type as ``KeyError: 'Cannot find None in
registry'``; our modules run these checks first in their constructors and say what is wrong,
e.g. ``SpineNet: filter_size_scale=-1 must be > 0``.

The checks are data: a module lists its numeric arguments with a rule each (:class:`Bound`,
:class:`Choice`, :class:`Flag`, :class:`Each`) and calls :func:`check_fields` once::

    check_fields('SpineNet', dict(in_channels=POSITIVE_INT, drop_path_rate=RATE),
                 dict(in_channels=in_channels, drop_path_rate=drop_path_rate))
"""
import inspect
import math
import numbers
from typing import Any, Iterable, List, Mapping, Optional, Sequence

import torch.nn as nn
from mmengine.registry import MODELS

from mmdet_spine.errors import ConfigError

__all__ = ['Bound', 'Choice', 'Flag', 'Each', 'OrNone', 'check_fields', 'check_range',
           'bound_arguments', 'check_anchor_levels',
           'check_choice', 'check_levels', 'check_norm_cfg', 'check_act_cfg',
           'norm_layer_names', 'act_layer_names', 'POSITIVE_INT', 'NON_NEGATIVE_INT',
           'ODD_POSITIVE_INT', 'POSITIVE', 'NON_NEGATIVE', 'RATE', 'FRACTION', 'FLAG']


def _fmt(x) -> str:
    return f'{x:g}' if isinstance(x, float) else str(x)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Bound:
    """A valid numeric range: ``low <= value <= high`` (either side open or unbounded).

    Args:
        low (float, optional): Lower bound. Default: None (unbounded).
        high (float, optional): Upper bound. Default: None (unbounded).
        low_open (bool): Exclude ``low`` itself. Default: False.
        high_open (bool): Exclude ``high`` itself. Default: False.
        integer (bool): The value must be an int (bools are refused). Default: False.
        odd (bool): The value must be odd (integers only). Default: False.
        hint (str): Appended to the message, e.g. what the values mean. Default: ''.
    """

    def __init__(self, low: Optional[float] = None, high: Optional[float] = None,
                 low_open: bool = False, high_open: bool = False, integer: bool = False,
                 odd: bool = False, hint: str = ''):
        self.low, self.high = low, high
        self.low_open, self.high_open = low_open, high_open
        self.integer, self.odd, self.hint = integer, odd, hint

    def describe(self) -> str:
        """The valid range in words: ``> 0``, ``in [0, 1)``, ``in -1..17``, ``an odd int >= 1``."""
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            if self.integer and not (self.low_open or self.high_open):
                rng = f'in {_fmt(lo)}..{_fmt(hi)}'
            else:
                rng = (f"in {'(' if self.low_open else '['}{_fmt(lo)}, {_fmt(hi)}"
                       f"{')' if self.high_open else ']'}")
        elif lo is not None:
            rng = f"{'>' if self.low_open else '>='} {_fmt(lo)}"
        elif hi is not None:
            rng = f"{'<' if self.high_open else '<='} {_fmt(hi)}"
        else:
            rng = 'finite'
        if self.odd:
            return f'an odd integer {rng}'
        return rng

    def contains(self, value) -> bool:
        """Whether ``value`` is valid (finite, the right type, inside the range)."""
        if self.integer and not _is_int(value):
            return False
        if not _is_real(value) or not math.isfinite(value):
            return False
        if self.odd and value % 2 == 0:
            return False
        if self.low is not None and not (value > self.low if self.low_open else value >= self.low):
            return False
        if self.high is not None and not (value < self.high if self.high_open
                                          else value <= self.high):
            return False
        return True

    def check(self, owner: str, field: str, value) -> None:
        if self.contains(value):
            return
        kind = ''
        if self.integer and not _is_int(value) and not self.odd:
            kind = 'an integer '
        elif not self.integer and not _is_real(value):
            kind = 'a number '
        hint = f' ({self.hint})' if self.hint else ''
        raise ConfigError(f'{owner}: {field}={value!r} must be {kind}{self.describe()}{hint}')


class Choice:
    """One of a fixed set of values.

    Args:
        choices (Sequence): The valid values.
        what (str): What a value is, for the message (``'a padding mode'``). Default: ''
            (the message then says ``is not valid``).
    """

    def __init__(self, choices: Sequence, what: str = ''):
        self.choices = tuple(choices)
        self.what = what

    def check(self, owner: str, field: str, value) -> None:
        for c in self.choices:  # True is not 1 here
            if value is c or (isinstance(value, bool) == isinstance(c, bool) and value == c):
                return
        what = f'is not {self.what}' if self.what else 'is not valid'
        raise ConfigError(f'{owner}: {field}={value!r} {what}; valid choices: '
                          f"{', '.join(str(c) for c in self.choices)}")


class Flag:
    """A bool (``'False'`` as a string is truthy: a typo that would silently flip it)."""

    def check(self, owner: str, field: str, value) -> None:
        if not isinstance(value, bool):
            raise ConfigError(f'{owner}: {field}={value!r} must be True or False')


class OrNone:
    """``None`` or a value valid under ``rule``."""

    def __init__(self, rule):
        self.rule = rule

    def check(self, owner: str, field: str, value) -> None:
        if value is not None:
            self.rule.check(owner, field, value)


class Each:
    """A sequence (or a single value, if ``scalar_ok``) whose items all satisfy ``rule``.

    Args:
        rule: The rule of every item.
        length (int, optional): Required length. Default: None (any).
        scalar_ok (bool): Also accept one bare value (``kernel_size=3`` for ``(3, 3)``).
            Default: False.
    """

    def __init__(self, rule, length: Optional[int] = None, scalar_ok: bool = False):
        self.rule, self.length, self.scalar_ok = rule, length, scalar_ok

    def check(self, owner: str, field: str, value) -> None:
        if self.scalar_ok and not isinstance(value, (list, tuple)):
            self.rule.check(owner, field, value)
            return
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f'{owner}: {field}={value!r} must be a list or tuple')
        if self.length is not None and len(value) != self.length:
            raise ConfigError(f'{owner}: {field}={tuple(value)!r} must have {self.length} '
                              f'entries, got {len(value)}')
        for i, item in enumerate(value):
            self.rule.check(owner, f'{field}[{i}]', item)


#: Common rules.
POSITIVE_INT = Bound(low=1, integer=True)
NON_NEGATIVE_INT = Bound(low=0, integer=True)
ODD_POSITIVE_INT = Bound(low=1, integer=True, odd=True)
POSITIVE = Bound(low=0, low_open=True)
NON_NEGATIVE = Bound(low=0)
#: A probability that must leave something: drop rates, stochastic depth.
RATE = Bound(0, 1, high_open=True)
#: A ratio in (0, 1] (e.g. squeeze-excitation width).
FRACTION = Bound(0, 1, low_open=True)
FLAG = Flag()


def check_fields(owner: str, rules: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Check every ``values[field]`` that ``rules`` has a rule for (fields not in ``values``
    are skipped, so ``**kwargs`` can be checked for the keys given).

    Args:
        owner (str): Module name for the message (e.g. ``'SpineNet'``).
        rules (Mapping[str, rule]): Field -> :class:`Bound` / :class:`Choice` / :class:`Flag`
            / :class:`Each` / :class:`OrNone` (anything with ``check(owner, field, value)``).
        values (Mapping[str, Any]): Field -> value.

    Raises:
        ConfigError: naming the owner, the first invalid field, its value and the valid range.
    """
    for field, rule in rules.items():
        if field in values:
            rule.check(owner, field, values[field])


def bound_arguments(func, *args, **kwargs) -> dict:
    """The arguments ``func(*args, **kwargs)`` would receive, by name, with its ``**kwargs``
    flattened in (defaults are not added). For checking the arguments a subclass passes on
    to a parent's ``__init__`` (give ``None`` for ``self``).
    """
    sig = inspect.signature(func)
    try:
        values = dict(sig.bind_partial(*args, **kwargs).arguments)
    except TypeError:  # the parent will say what is wrong with the call itself
        return dict(kwargs)
    for name, p in sig.parameters.items():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            values.update(values.pop(name, {}))
        elif p.kind is inspect.Parameter.VAR_POSITIONAL:
            values.pop(name, None)
    return values


def check_anchor_levels(owner: str, anchor_generator, num_ins: int) -> None:
    """A head with ``num_ins`` levels of its own layers needs as many anchor strides."""
    strides = anchor_generator.get('strides') if isinstance(anchor_generator, dict) else None
    if isinstance(strides, (list, tuple)) and len(strides) != num_ins:
        raise ConfigError(f'{owner}: num_ins={num_ins} must equal the number of '
                          f'anchor_generator.strides={list(strides)} ({len(strides)} levels)')


def check_range(owner: str, field: str, value, low: Optional[float] = None,
                high: Optional[float] = None, *, low_open: bool = False,
                high_open: bool = False, integer: bool = False, hint: str = '') -> None:
    """Raise :class:`ConfigError` unless ``value`` is in the range (see :class:`Bound`)."""
    Bound(low, high, low_open, high_open, integer, hint=hint).check(owner, field, value)


def check_choice(owner: str, field: str, value, choices: Sequence, what: str = ''):
    """Return ``value`` if it is one of ``choices``, else raise :class:`ConfigError`."""
    Choice(choices, what).check(owner, field, value)
    return value


def check_levels(owner: str, min_level, max_level, valid: Iterable[int],
                 what: str = 'level') -> None:
    """``min_level`` and ``max_level`` are valid levels and ``min_level <= max_level``.

    Args:
        owner (str): Module name for the message.
        min_level (int): Lowest level.
        max_level (int): Highest level.
        valid (Iterable[int]): The valid levels.
        what (str): What a level is, for the message. Default: 'level'.
    """
    choice = Choice(tuple(valid), f'a {owner} {what}')
    choice.check(owner, 'min_level', min_level)
    choice.check(owner, 'max_level', max_level)
    if min_level > max_level:
        raise ConfigError(f'{owner}: min_level={min_level} must be <= max_level={max_level}')


# ----------------------------------------------------------------------- norm / act configs
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
        raise ConfigError(f"{owner}: {field}={cfg!r} must be a dict with a 'type' key (e.g. "
                          f"dict(type='{choices[0] if choices else '?'}'))")
    t = cfg['type']
    if isinstance(t, type):
        return  # a class given directly: mmcv builds it as it is
    if t not in choices and _lookup(t) is None:
        raise ConfigError(f"{owner}: {field}.type={t!r} is not {kind}; valid choices: "
                          f"{', '.join(choices)}")


def check_norm_cfg(norm_cfg: Optional[dict], owner: str, field: str = 'norm_cfg') -> None:
    """Raise :class:`ConfigError` unless ``norm_cfg`` is None or names a registered norm layer.

    Args:
        norm_cfg (dict, optional): The config to check.
        owner (str): Module name for the message (e.g. ``'SpineNet'``).
        field (str): Argument name for the message. Default: ``'norm_cfg'``.
    """
    _check(norm_cfg, field, owner, 'a normalization layer', norm_layer_names())


def check_act_cfg(act_cfg: Optional[dict], owner: str, field: str = 'act_cfg') -> None:
    """Raise :class:`ConfigError` unless ``act_cfg`` is None or names a registered activation.

    Args:
        act_cfg (dict, optional): The config to check.
        owner (str): Module name for the message.
        field (str): Argument name for the message. Default: ``'act_cfg'``.
    """
    _check(act_cfg, field, owner, 'an activation layer', act_layer_names())
