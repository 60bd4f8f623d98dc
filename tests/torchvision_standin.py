"""Test-only stand-in for ``torchvision`` so that ``effdet``/``timm`` import on this CPU torch.

The PyPI torchvision wheel cannot register its C++ ops against the local CPU torch build, yet
effdet and timm import it at module level. The parity tests only build effdet models and run
their forward, which never calls torchvision, so a meta-path finder serves every
``torchvision.*`` module with inert placeholder attributes (a real ``FrozenBatchNorm2d`` and an
``InterpolationMode`` namespace, which timm touches at import). Never imported by the package.
"""
import enum
import importlib.abc
import importlib.machinery
import sys
import types

import torch
import torch.nn as nn


class _FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters (torchvision's semantics)."""

    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        for name, init in (('weight', torch.ones), ('bias', torch.zeros),
                           ('running_mean', torch.zeros), ('running_var', torch.ones)):
            self.register_buffer(name, init(num_features))

    def forward(self, x):
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale[None, :, None, None] + shift[None, :, None, None]


class _InterpolationMode(enum.Enum):
    NEAREST = 'nearest'
    NEAREST_EXACT = 'nearest-exact'
    BILINEAR = 'bilinear'
    BICUBIC = 'bicubic'
    BOX = 'box'
    HAMMING = 'hamming'
    LANCZOS = 'lanczos'


class _Placeholder:
    """Anything torchvision would have provided; fails loudly if actually used."""

    def __init__(self, name):
        self._name = name

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f'torchvision stand-in: {self._name} is not available in tests')

    def __getattr__(self, item):
        return _Placeholder(f'{self._name}.{item}')

    def __mro_entries__(self, bases):
        return (object,)


class _StandInModule(types.ModuleType):
    def __getattr__(self, item):
        if item.startswith('__'):
            raise AttributeError(item)
        if item == 'FrozenBatchNorm2d':
            return _FrozenBatchNorm2d
        if item == 'InterpolationMode':
            return _InterpolationMode
        return _Placeholder(f'{self.__name__}.{item}')


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname == 'torchvision' or fullname.startswith('torchvision.'):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StandInModule(spec.name)
        module.__path__ = []
        module.__version__ = '0.0.0+standin'
        return module

    def exec_module(self, module):
        pass


def install():
    """Install the stand-in (idempotent)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def uninstall():
    """Remove the stand-in and every ``torchvision`` module it served."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Finder)]
    for name in [n for n in sys.modules if n == 'torchvision' or n.startswith('torchvision.')]:
        if isinstance(sys.modules[name], _StandInModule):
            del sys.modules[name]


def import_effdet():
    """Import and return ``effdet`` behind the stand-in, then take the stand-in away again.

    effdet ``torch.jit.script``s a function that calls torchvision's ``batched_nms``; scripting
    is switched off while it imports (what ``PYTORCH_JIT=0`` does, but torch is already
    imported here). Only model construction and forward are used afterwards.
    """
    from torch.jit import _state
    was_enabled = bool(_state._enabled)
    install()
    _state.disable()
    try:
        import effdet
    finally:
        if was_enabled:
            _state.enable()
        uninstall()
    return effdet
