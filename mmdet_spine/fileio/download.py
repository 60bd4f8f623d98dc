"""The one download and checksum implementation of mmdet-spine.

:func:`download` streams a URL into a temporary file next to its destination, refuses a
download shorter than its ``Content-Length``, checks the sha256 (or a published prefix of it)
and only then renames the file into place, so a partial or wrong download never becomes a
cache entry. The zoo (``zoo://``) and the ``http(s)://`` checkpoint loader both use it.
"""
import hashlib
import http.client
import os
import os.path as osp
import sys
import tempfile
import urllib.error
import urllib.request
from typing import Optional

from ..errors import ZooError

__all__ = ['download', 'sha256sum']

_CHUNK = 1 << 20


def sha256sum(path: str) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            h.update(chunk)
    return h.hexdigest()


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
                    kind = (resp.headers.get('Content-Type') or '').lower()
                    if kind.startswith('text/html'):
                        raise ZooError(f'could not download {url} (the server sent an HTML '
                                       'page, not the file: a login or error page?); download '
                                       f'it by hand and place it at {hand_path}')
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
