"""The zoo's download cache: verified downloads and sha256-named converted checkpoints.

Layout, under the torch hub directory (``torch.hub.get_dir()``, so ``$TORCH_HOME`` applies)::

    <hub>/checkpoints/mmdet_spine/<name>-<sha256[:8]>.pth   converted, ready to load
    <hub>/checkpoints/mmdet_spine/downloads/<upstream file>  upstream file (verified)

Nothing becomes a cache entry until it is complete and verified: downloads stream into a
temporary file in the same directory, their length is checked against ``Content-Length``
and their sha256 against the published one, and only then are they renamed into place. A
converted checkpoint's file name carries the first 8 hex digits of its own sha256 (mmdet's
``-abcdef12.pth`` convention), re-checked every time the cache is used.
"""
import glob
import hashlib
import http.client
import os
import os.path as osp
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from typing import Optional
from urllib.parse import urlparse

import torch

from .model_index import ZooError

__all__ = ['cache_dir', 'downloads_dir', 'download_path', 'sha256sum', 'download',
           'verified_download', 'find_cached', 'store_converted', 'HASH_LEN']

#: Hex digits of the sha256 in a converted checkpoint's file name.
HASH_LEN = 8
_CHUNK = 1 << 20


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


def sha256sum(path: str) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            h.update(chunk)
    return h.hexdigest()


def _check_hash(path: str, expected: Optional[str], what: str) -> None:
    """Delete ``path`` and raise unless its sha256 starts with ``expected``."""
    if not expected:
        return
    actual = sha256sum(path)
    if not actual.startswith(expected.lower()):
        os.remove(path)
        raise ZooError(f'checksum mismatch for {what}: expected sha256 {expected}, got '
                       f'{actual}; the file was removed')


class _Progress:
    """tqdm when available, else a percentage on stderr; silent when disabled."""

    def __init__(self, total: Optional[int], desc: str, enabled: bool):
        self.total, self.done, self.enabled, self._bar, self._shown = total, 0, enabled, None, -1
        if not enabled:
            return
        try:
            from tqdm import tqdm
            self._bar = tqdm(total=total, desc=desc, unit='B', unit_scale=True,
                             unit_divisor=1024, file=sys.stderr)
        except ImportError:
            print(f'downloading {desc}', file=sys.stderr)

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
        elif self.total:
            pct = 100 * self.done // self.total
            if pct // 10 != self._shown // 10:
                self._shown = pct
                print(f'  {pct}% ({self.done}/{self.total} bytes)', file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def download(url: str, dst: str, expected_sha256: Optional[str] = None, progress: bool = True,
             timeout: float = 60.0, hand_path: Optional[str] = None) -> str:
    """Download ``url`` to ``dst`` through a temporary file; verify; rename.

    Args:
        url (str): http(s) or file URL.
        dst (str): Final path; it exists afterwards only if the download is complete and
            matches ``expected_sha256``.
        expected_sha256 (str, optional): Full sha256 or a published prefix.
        progress (bool): Show a progress bar on stderr.
        timeout (float): Socket timeout in seconds.
        hand_path (str, optional): The path that the error message tells the user to place
            the file at by hand (default ``dst``).

    Raises:
        ZooError: Unreachable URL or short read (one line naming the URL and ``dst``, where the
            file may be placed by hand), or checksum mismatch (expected and actual hash).
    """
    hand_path = hand_path or dst
    os.makedirs(osp.dirname(dst), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(dst)}.', suffix='.partial',
                               dir=osp.dirname(dst))
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, 'wb') as out:
            try:
                req = urllib.request.Request(url, headers={'User-Agent': 'mmdet-spine-zoo'})
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    length = resp.headers.get('Content-Length')
                    total = int(length) if length and length.isdigit() else None
                    bar = _Progress(total, osp.basename(dst), progress)
                    try:
                        for chunk in iter(lambda: resp.read(_CHUNK), b''):
                            out.write(chunk)
                            h.update(chunk)
                            bar.update(len(chunk))
                    finally:
                        bar.close()
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
                reason = getattr(e, 'reason', None) or e
                raise ZooError(f'could not download {url} ({reason}); download it by hand and '
                               f'place it at {hand_path}') from None
        if total is not None and bar.done != total:
            raise ZooError(f'could not download {url} (connection closed after {bar.done} of '
                           f'{total} bytes); download it by hand and place it at {hand_path}')
        actual = h.hexdigest()
        if expected_sha256 and not actual.startswith(expected_sha256.lower()):
            raise ZooError(f'checksum mismatch for {url}: expected sha256 {expected_sha256}, '
                           f'got {actual}; the file was removed')
        os.replace(tmp, dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return dst


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
