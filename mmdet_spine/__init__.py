"""mmdet-spine: SpineNet, SpineResNet, BiFPN and EfficientDet for MMDetection 3.x.

Importing this package registers every module into mmdet's registries (``MODELS``,
``DATASETS``, ``HOOKS``), the ``SpineRunner`` into mmengine's ``RUNNERS``, the safe and the
``zoo://`` checkpoint schemes into mmengine's ``CheckpointLoader`` and the ``'atomic_local'``
file backend, all through those libraries' registration APIs; nothing of theirs is
reassigned, and the subpackages may be imported in any order. Configs only need::

    custom_imports = dict(imports=['mmdet_spine'], allow_failed_imports=False)
    default_scope = 'mmdet'
"""
from .version import __version__
from . import errors  # noqa: F401
from . import fileio  # noqa: F401
from . import models  # noqa: F401
from . import datasets  # noqa: F401
from . import classification  # noqa: F401  (SpineNet image classification)
from . import zoo  # noqa: F401  (zoo:// checkpoint scheme)
from . import engine  # noqa: F401  (SpineRunner, hooks, safe checkpoint schemes)

__all__ = ['__version__']
