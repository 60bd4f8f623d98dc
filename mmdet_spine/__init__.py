"""mmdet-spine: SpineNet, SpineResNet, BiFPN and EfficientDet for MMDetection 3.x.

Importing this package registers every module into mmdet's registries (``MODELS``,
``DATASETS``, ...) and installs the safe checkpoint loaders into mmengine, so that
configs only need::

    custom_imports = dict(imports=['mmdet_spine'], allow_failed_imports=False)
    default_scope = 'mmdet'
"""
from .version import __version__
from . import engine  # noqa: F401  (safe checkpoint loading; must come first)
from . import datasets  # noqa: F401
from . import models  # noqa: F401
from . import zoo  # noqa: F401  (registers the zoo:// checkpoint scheme)

__all__ = ['__version__']
