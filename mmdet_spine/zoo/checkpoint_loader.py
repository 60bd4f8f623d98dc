"""The ``zoo://NAME`` checkpoint scheme for mmengine's ``CheckpointLoader``.

With it, ``load_from='zoo://efficientdet-d0_effdet'`` (or ``tools/test.py CONFIG
zoo://NAME``, or ``init_cfg=dict(type='Pretrained', checkpoint='zoo://NAME')``) loads the
zoo model's converted checkpoint: from the cache without any network access when it is
there, otherwise fetched (downloaded, verified, converted) first, on rank 0 only in a
distributed run. Loading is :func:`~mmdet_spine.fileio.safe_torch_load`
(``weights_only=True``).
"""
import os

import torch

from ..fileio import safe_torch_load
from .fetch import cached_or_fetch

__all__ = ['ZOO_PREFIX', 'load_from_zoo', 'register_zoo_scheme']

#: The checkpoint-path prefix handled here.
ZOO_PREFIX = 'zoo://'


def load_from_zoo(filename: str, map_location=None):
    """mmengine checkpoint loader for ``zoo://NAME``.

    Args:
        filename (str): ``zoo://`` followed by a zoo name (see ``python tools/zoo.py list``).
        map_location: As for :func:`torch.load`.
    """
    from mmengine.dist import get_dist_info
    name = filename[len(ZOO_PREFIX):]
    rank, world_size = get_dist_info()
    path = None
    if rank == 0:
        path = cached_or_fetch(name, progress=os.isatty(2))
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            path = cached_or_fetch(name, progress=False)
    return safe_torch_load(path, map_location=map_location)


def register_zoo_scheme() -> None:
    """Register ``zoo://`` with mmengine's ``CheckpointLoader`` (idempotent)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes=ZOO_PREFIX, loader=load_from_zoo, force=True)
