"""Model zoo: metafile index, verified downloads, converted official weights, ``zoo://``.

Importing it (``import mmdet_spine`` does) registers the ``zoo://`` checkpoint scheme.
"""
from .cache import cache_dir, find_cached
from .checkpoint_loader import ZOO_PREFIX, load_from_zoo, register_zoo_scheme
from .fetch import cached_or_fetch, fetch, resolve_tf_python
from .model_index import ZooError, ZooModel, get_model, load_model_index

register_zoo_scheme()

__all__ = ['ZOO_PREFIX', 'ZooError', 'ZooModel', 'cache_dir', 'cached_or_fetch', 'fetch',
           'find_cached', 'get_model', 'load_from_zoo', 'load_model_index',
           'register_zoo_scheme', 'resolve_tf_python']
