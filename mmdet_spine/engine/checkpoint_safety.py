"""mmengine's checkpoint schemes, made safe: nothing loaded can execute code.

mmengine loads ``http(s)://`` checkpoints (and ``torchvision://``, ``open-mmlab://``,
``mmcls://``, which resolve to URLs) through ``torch.hub.load_state_dict_from_url``, which
unpickles without restriction: a downloaded file could run arbitrary code. Its local loader
uses torch's default ``weights_only=True``, which refuses what mmengine itself writes into a
checkpoint, so ``--resume`` fails on torch >= 2.6.

:func:`install_safe_loaders` registers, through mmengine's documented extension point
``CheckpointLoader.register_scheme``, our loaders for each of those schemes. All of them load
with :func:`~mmdet_spine.fileio.safe_torch_load` (``weights_only=True`` plus exactly the
globals mmengine writes); a local checkpoint that has a sha256 record (every checkpoint
mmdet-spine writes, see :mod:`mmdet_spine.fileio.integrity`) is verified against it first.
Downloads go through the one downloader (:func:`mmdet_spine.fileio.download`), and a
downloaded file that fails to load is deleted from the cache, never reused.
"""
import logging
import os
import os.path as osp
import re
from typing import Optional
from urllib.parse import urlparse

import torch
from mmengine.logging import print_log

from ..errors import CheckpointSafetyError, ZooError
from ..fileio import (MMENGINE_CHECKPOINT_GLOBALS, CheckpointNotFoundError, download,
                      safe_torch_load, verify_recorded_sha256)

__all__ = ['CheckpointSafetyError', 'MMENGINE_CHECKPOINT_GLOBALS', 'safe_torch_load',
           'install_safe_loaders', 'download_checkpoint', 'load_local_checkpoint',
           'load_http_checkpoint', 'SAFE_SCHEMES']

_HASH_SUFFIX = re.compile(r'-([a-f0-9]{8,64})\.')


def download_checkpoint(url: str, model_dir: Optional[str] = None, progress: bool = True,
                        expected_sha256: Optional[str] = None) -> str:
    """Download ``url`` into the torch hub cache (``$TORCH_HOME/hub/checkpoints``) once.

    Args:
        url (str): ``http(s)://`` URL of a checkpoint.
        model_dir (str, optional): Cache directory instead of the hub's.
        progress (bool): Progress bar on stderr.
        expected_sha256 (str, optional): Full sha256 or prefix; default: mmdet-style, the
            ``-<hex>.`` suffix of the file name, if any.

    Returns:
        str: The cached file (a cache hit needs no network).

    Raises:
        ZooError: The download failed, was cut short (``Content-Length``), was an HTML page,
            or does not match the expected sha256 (the file is removed).
    """
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    name = osp.basename(urlparse(url).path) or 'checkpoint.pth'
    cached = osp.join(model_dir, name)
    if osp.isfile(cached):
        return cached
    if expected_sha256 is None:
        m = _HASH_SUFFIX.search(name)
        expected_sha256 = m.group(1) if m else None
    return download(url, cached, expected_sha256=expected_sha256, progress=progress)


def load_local_checkpoint(filename, map_location=None):
    """The local-file scheme: sha256 record checked (when there is one), then safe loading.

    Raises:
        CheckpointNotFoundError: No such file (also a ``FileNotFoundError``).
        CheckpointIntegrityError: The file does not match the sha256 recorded when it was
            written.
        CheckpointSafetyError: Refused or unreadable.
    """
    filename = osp.expanduser(os.fspath(filename))
    if not osp.isfile(filename):
        raise CheckpointNotFoundError(f'checkpoint not found: {filename}')
    verified = verify_recorded_sha256(filename)
    # a matching sha256 already proves every byte; otherwise check the zip CRCs
    return safe_torch_load(filename, map_location=map_location, check_crc=not verified)


def _load_downloaded(path: str, map_location):
    """Load a file of the download cache; delete it when it cannot be loaded (a cut-off
    download without Content-Length, an HTML page, a refused pickle is never reused)."""
    try:
        return safe_torch_load(path, map_location=map_location)
    except CheckpointSafetyError as e:
        note = '; the cached download was deleted'
        try:
            os.remove(path)
        except FileNotFoundError:  # another rank got there first
            pass
        except OSError:
            note = f'; delete {path} before trying again'
        raise type(e)(f'{e}{note}') from None


def load_http_checkpoint(filename, map_location=None, model_dir=None, progress=os.isatty(2)):
    """The ``http(s)://`` scheme: one verified download into the hub cache (rank 0 first in
    distributed runs), then safe loading."""
    from mmengine.dist import get_dist_info
    rank, world_size = get_dist_info()
    if rank == 0:
        path = download_checkpoint(filename, model_dir=model_dir, progress=progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            path = download_checkpoint(filename, model_dir=model_dir, progress=False)
    return _load_downloaded(path, map_location)


def _named_url(scheme: str, name: str, urls: dict) -> str:
    if name not in urls:
        raise ZooError(f'{scheme}{name}: unknown name (mmengine knows {len(urls)} {scheme} '
                       'names)')
    return urls[name]


def _torchvision_urls() -> dict:
    from mmengine.runner import checkpoint as ckpt
    try:
        return ckpt.get_torchvision_models()
    except ImportError:  # no torchvision: mmengine's own table of torchvision 0.12 URLs
        import mmengine
        return mmengine.load(osp.join(mmengine.__path__[0], 'hub', 'torchvision_0.12.json'))


def load_torchvision_checkpoint(filename, map_location=None):
    """``torchvision://NAME`` (and the deprecated ``modelzoo://NAME``), safely."""
    prefix = 'modelzoo://' if filename.startswith('modelzoo://') else 'torchvision://'
    url = _named_url(prefix, filename[len(prefix):], _torchvision_urls())
    return load_http_checkpoint(url, map_location=map_location)


def load_openmmlab_checkpoint(filename, map_location=None):
    """``open-mmlab://NAME`` / ``openmmlab://NAME`` (mmengine's URL table), safely."""
    from mmengine.runner import checkpoint as ckpt
    prefix = 'open-mmlab://' if filename.startswith('open-mmlab://') else 'openmmlab://'
    name = filename[len(prefix):]
    deprecated = ckpt.get_deprecated_model_names()
    if name in deprecated:
        print_log(f'{prefix}{name} is deprecated in favor of {prefix}{deprecated[name]}',
                  logger='current', level=logging.WARNING)
        name = deprecated[name]
    url = _named_url(prefix, name, ckpt.get_external_models())
    if url.startswith(('http://', 'https://')):
        return load_http_checkpoint(url, map_location=map_location)
    return load_local_checkpoint(osp.join(ckpt._get_mmengine_home(), url), map_location)


def load_mmcls_checkpoint(filename, map_location=None):
    """``mmcls://NAME`` (mmengine's URL table), safely; backbone keys as mmengine keeps them."""
    from mmengine.runner import checkpoint as ckpt
    url = _named_url('mmcls://', filename[len('mmcls://'):], ckpt.get_mmcls_models())
    return ckpt._process_mmcls_checkpoint(load_http_checkpoint(url, map_location=map_location))


#: The schemes whose mmengine loaders are replaced, and ours.
SAFE_SCHEMES = {
    '': load_local_checkpoint,
    ('http://', 'https://'): load_http_checkpoint,
    ('modelzoo://', 'torchvision://'): load_torchvision_checkpoint,
    ('open-mmlab://', 'openmmlab://'): load_openmmlab_checkpoint,
    'mmcls://': load_mmcls_checkpoint,
}


def install_safe_loaders() -> None:
    """Register our loaders for every scheme in :data:`SAFE_SCHEMES` with mmengine's
    ``CheckpointLoader`` (replacing a scheme's loader is what ``register_scheme(force=True)``
    is for). Idempotent; nothing else of mmengine is touched."""
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefixes, loader in SAFE_SCHEMES.items():
        CheckpointLoader.register_scheme(prefixes=prefixes, loader=loader, force=True)

