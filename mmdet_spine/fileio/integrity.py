"""A sha256 recorded next to every checkpoint mmdet-spine writes, checked whenever it is loaded.

A checkpoint whose bytes changed after it was written (bit rot, a bad copy, a disk or network
file system that returned other data) would otherwise load silently as other weights. Next to
``epoch_3.pth`` we write ``epoch_3.pth.sha256``, in the format of ``sha256sum`` (so
``sha256sum -c epoch_3.pth.sha256`` checks it by hand too)::

    9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  epoch_3.pth

:func:`write_checkpoint_bytes` writes the checkpoint and then its record, both atomically, and
drops a stale record before the new file replaces an old one, so a record never describes
other bytes than the file next to it (a run killed in between leaves a checkpoint without a
record, which loads unverified, as files written by others do). :func:`verify_recorded_sha256`
is what every load of a local checkpoint calls.
"""
import hashlib
import os
import os.path as osp
import re
from typing import Optional

from ..errors import CheckpointIntegrityError
from .atomic_write import atomic_write_bytes
from .download import sha256sum

__all__ = ['SHA256_SUFFIX', 'sha256_record_path', 'read_recorded_sha256',
           'verify_recorded_sha256', 'write_checkpoint_bytes', 'remove_checkpoint']

#: Suffix of the record file next to a checkpoint.
SHA256_SUFFIX = '.sha256'
_RECORD = re.compile(r'^([0-9a-fA-F]{64})(?:\s+\*?(.+))?$')


def sha256_record_path(path: str) -> str:
    """``<path>.sha256``."""
    return os.fspath(path) + SHA256_SUFFIX


def read_recorded_sha256(path: str) -> Optional[str]:
    """The sha256 recorded for the checkpoint at ``path``, or None when there is no record.

    Raises:
        CheckpointIntegrityError: The record exists but is not a sha256 line.
    """
    record = sha256_record_path(path)
    try:
        with open(record, encoding='utf-8', errors='replace') as f:
            line = f.readline().strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CheckpointIntegrityError(f'cannot read {record}: {e.strerror}') from None
    m = _RECORD.match(line)
    if not m:
        raise CheckpointIntegrityError(
            f'{record} is not a sha256 record (expected "<64 hex digits>  '
            f'{osp.basename(path)}"); delete it to load {path} unverified')
    return m.group(1).lower()


def verify_recorded_sha256(path: str) -> bool:
    """Check ``path`` against its recorded sha256.

    Returns:
        bool: True when a record exists and matches; False when there is none (a checkpoint
        not written by mmdet-spine: nothing to check).

    Raises:
        CheckpointIntegrityError: The file does not match its record.
    """
    expected = read_recorded_sha256(path)
    if expected is None:
        return False
    actual = sha256sum(path)
    if actual != expected:
        raise CheckpointIntegrityError(
            f'{path} does not match the sha256 recorded when it was written '
            f'({osp.basename(sha256_record_path(path))}: {expected[:16]}..., file: '
            f'{actual[:16]}...): it changed or was damaged after saving and was not loaded')
    return True


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def write_checkpoint_bytes(data: bytes, path: str) -> str:
    """Write a serialised checkpoint atomically, then its sha256 record.

    Args:
        data (bytes): What ``torch.save`` produced.
        path (str): Destination on a local file system.

    Returns:
        str: The hex sha256 of ``data``.
    """
    digest = hashlib.sha256(data).hexdigest()
    record = sha256_record_path(path)
    atomic_write_bytes(data, path, before_replace=lambda: _remove(record))
    atomic_write_bytes(f'{digest}  {osp.basename(path)}\n'.encode(), record)
    return digest


def remove_checkpoint(path: str) -> None:
    """Delete a checkpoint and its sha256 record (either may be missing)."""
    _remove(path)
    _remove(sha256_record_path(path))
