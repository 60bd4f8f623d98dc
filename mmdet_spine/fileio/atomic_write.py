"""Files that are either the old version or the new one, never half written.

:func:`atomic_write_bytes` writes to a temporary file in the destination's directory, fsyncs
it, ``os.replace``-s it onto the final name and fsyncs the directory: a process killed at any
moment leaves the previous file (or none) plus, at worst, a temporary ``.<name>.*.saving``
file that the next run removes.
"""
import os
import os.path as osp
import tempfile
from typing import Callable, Optional

__all__ = ['atomic_write_bytes', 'TMP_SUFFIX']

#: Suffix of the temporary files; a leftover one (the run was killed while saving) is
#: removed by :class:`~mmdet_spine.engine.AtomicCheckpointHook` at the start of the next run.
TMP_SUFFIX = '.saving'


def _write(fh, data: bytes) -> None:
    """Write ``data`` to the open temporary file (a seam for tests that kill mid-write)."""
    fh.write(data)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the rename is still atomic
    finally:
        os.close(fd)


def atomic_write_bytes(data: bytes, path: str,
                       before_replace: Optional[Callable[[], None]] = None) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either the old file or the new one.

    Args:
        data (bytes): File content.
        path (str): Destination on a local file system.
        before_replace (callable, optional): Called once the new content is safely on disk,
            just before it replaces ``path`` (e.g. to drop a record that describes the old
            content).
    """
    path = osp.abspath(path)
    directory = osp.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix=TMP_SUFFIX,
                               dir=directory)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # what open() would have given, not mkstemp's 0600
        with os.fdopen(fd, 'wb') as fh:
            _write(fh, data)
            fh.flush()
            os.fsync(fh.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
        _fsync_dir(directory)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
