"""The zoo's download cache: verified downloads and sha256-named converted checkpoints.

Layout, under the torch hub directory (``torch.hub.get_dir()``, so ``$TORCH_HOME`` applies)::

    <hub>/checkpoints/mmdet_spine/<name>-<sha256[:8]>.pth   converted, ready to load
    <hub>/checkpoints/mmdet_spine/downloads/<upstream file>  upstream file (verified)

Nothing becomes a cache entry until it is complete and verified: downloads stream into a
temporary file in the same directory, their length is checked against ``Content-Length``
and their sha256 against the published one, and only then are they renamed into place. A
converted checkpoint's file name carries the first 8 hex digits of its own sha256 (mmdet's
``-abcdef12.pth`` convention), re-checked every time the cache is used. The downloader and
``sha256sum`` are the package's one implementation, :mod:`mmdet_spine.fileio.download`
(re-exported here).
"""
import glob
import os
import os.path as osp
import re
import shutil
from typing import Optional
from urllib.parse import urlparse

import torch

from ..errors import ZooError
from ..fileio import download, sha256sum

__all__ = ['cache_dir', 'downloads_dir', 'download_path', 'sha256sum', 'download',
           'verified_download', 'find_cached', 'store_converted', 'HASH_LEN']

#: Hex digits of the sha256 in a converted checkpoint's file name.
HASH_LEN = 8


def cache_dir() -> str:
    """``<torch hub dir>/checkpoints/mmdet_spine`` (respects ``$TORCH_HOME``)."""
    return osp.join(torch.hub.get_dir(), 'checkpoints', 'mmdet_spine')


def downloads_dir() -> str:
    """Where verified upstream files are kept (and where to place one by hand)."""
    return osp.join(cache_dir(), 'downloads')


def download_path(url: str) -> str:
    """The cache path of the upstream file at ``url``."""
    name = osp.basename(urlparse(url).path)
    if not name:
        raise ZooError(f'cannot derive a file name from URL {url}')
    return osp.join(downloads_dir(), name)


def _check_hash(path: str, expected: Optional[str], what: str) -> None:
    """Delete ``path`` and raise unless its sha256 starts with ``expected``."""
    if not expected:
        return
    actual = sha256sum(path)
    if not actual.startswith(expected.lower()):
        os.remove(path)
        raise ZooError(f'checksum mismatch for {what}: expected sha256 {expected}, got '
                       f'{actual}; the file was removed')


def verified_download(url: str, expected_sha256: Optional[str], progress: bool = True) -> str:
    """The upstream file in :func:`downloads_dir`: a verified cached copy or a new download.

    A file already there (e.g. placed by hand) is checked against ``expected_sha256``; on a
    mismatch it is deleted and :class:`ZooError` says so.
    """
    dst = download_path(url)
    if osp.isfile(dst):
        _check_hash(dst, expected_sha256, dst)
        return dst
    return download(url, dst, expected_sha256, progress=progress)


_CACHED = re.compile(r'-([0-9a-f]{%d})\.pth$' % HASH_LEN)


def find_cached(name: str) -> Optional[str]:
    """The converted checkpoint of zoo model ``name``, or None.

    Raises:
        ZooError: The cached file no longer matches the hash in its name (it is deleted).
    """
    for path in sorted(glob.glob(osp.join(glob.escape(cache_dir()), f'{glob.escape(name)}-*.pth'))):
        m = _CACHED.search(osp.basename(path))
        if not m or osp.basename(path) != f'{name}-{m.group(1)}.pth':
            continue
        _check_hash(path, m.group(1), f'cached {path}')
        return path
    return None


def store_converted(name: str, src: str) -> str:
    """Move the converted checkpoint ``src`` into the cache as ``<name>-<sha8>.pth``."""
    os.makedirs(cache_dir(), exist_ok=True)
    digest = sha256sum(src)
    dst = osp.join(cache_dir(), f'{name}-{digest[:HASH_LEN]}.pth')
    tmp = dst + '.partial'
    shutil.move(src, tmp)
    os.replace(tmp, dst)
    for old in glob.glob(osp.join(glob.escape(cache_dir()), f'{glob.escape(name)}-*.pth')):
        if old != dst and _CACHED.search(old) and \
                osp.basename(old)[:-len('-12345678.pth')] == name:
            os.remove(old)
    return dst
