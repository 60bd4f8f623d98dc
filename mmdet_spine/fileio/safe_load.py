"""Checkpoint loading that never executes code, works on torch >= 2.6 and never says less
than what is wrong.

torch >= 2.6 loads with ``weights_only=True`` by default, which refuses the few Python
objects mmengine itself pickles into a checkpoint (its ``HistoryBuffer``, numpy arrays and
scalars in the message hub), so mmengine 0.10.7's ``--resume`` and ``tools/test.py`` fail with
``UnpicklingError``. :func:`safe_torch_load` always loads with ``weights_only=True`` and allows
exactly the globals mmengine writes (:data:`MMENGINE_CHECKPOINT_GLOBALS`); any other pickled
global is refused with one line that names it, and nothing is executed.

Every other way a file can fail to load (not a checkpoint, truncated, bit flips, a text file)
is one :class:`~mmdet_spine.errors.CheckpointSafetyError` naming the file, never a raw
``KeyError``/``OSError`` from inside torch. torch does not check the CRC-32 that every record
of its zip format carries, so a bit flip inside a tensor would load as different numbers;
:func:`safe_torch_load` checks every record's CRC first (a streaming read, cheap next to
unpickling), so a damaged zip checkpoint is refused, never loaded as other weights.
"""
import io
import os
import pickle
import re
import zipfile
from typing import Any, List, Optional, Union

import numpy as np
import torch

from ..errors import CheckpointSafetyError

__all__ = ['MMENGINE_CHECKPOINT_GLOBALS', 'safe_torch_load', 'check_zip_crc',
           'CheckpointNotFoundError']

_CHUNK = 1 << 20


class CheckpointNotFoundError(CheckpointSafetyError, FileNotFoundError):
    """The checkpoint file does not exist (also a ``FileNotFoundError``, as mmengine raises)."""


def _numpy_globals() -> List[Any]:
    core = getattr(np, '_core', None) or np.core  # numpy 2 renamed numpy.core to numpy._core
    allowed = [np.ndarray, np.dtype, core.multiarray._reconstruct, core.multiarray.scalar]
    # numpy >= 1.25 pickles dtypes through their concrete classes (numpy.dtypes.Float64DType...).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return allowed


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` as a ``HistoryBuffer`` pickle uses it, and for nothing else.

    A pickled ``HistoryBuffer`` holds its statistics methods as ``getattr(HistoryBuffer,
    'mean')`` etc., so the pickle names ``builtins.getattr``. Unpickling resolves that name to
    this function, which only hands out those methods.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = {'mean', 'max', 'min', 'current', *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r}) is not part of an '
        'mmengine checkpoint')


def _mmengine_globals() -> List[Any]:
    from mmengine.logging.history_buffer import HistoryBuffer
    return [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')]


#: What mmengine 0.10.x writes into a checkpoint besides tensors and builtins: the message
#: hub's ``HistoryBuffer`` objects (with ``getattr`` restricted to their statistics methods)
#: and the numpy arrays/scalars/dtypes they and the runtime info hold. Nothing else.
MMENGINE_CHECKPOINT_GLOBALS: List[Any] = _mmengine_globals() + _numpy_globals()


def _describe(f: Union[str, os.PathLike, io.IOBase]) -> str:
    return f"'{os.fspath(f)}'" if isinstance(f, (str, os.PathLike)) else 'the checkpoint stream'


def _allowed_names() -> set:
    return {g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
            for g in MMENGINE_CHECKPOINT_GLOBALS}


def _unsafe_globals(f, message: str) -> List[str]:
    """The globals the refused file pickles: from the zip's pickle when possible, else the
    names torch's message gives (a legacy, non-zip file)."""
    found: List[str] = []
    if isinstance(f, (str, os.PathLike)):
        try:
            found = list(torch.serialization.get_unsafe_globals_in_checkpoint(f))
        except Exception:  # noqa: BLE001  (legacy format: fall back to the message)
            found = []
    if not found:
        found = re.findall(r'GLOBAL ([\w.]+)', message)
    allowed = _allowed_names()
    return list(dict.fromkeys(g for g in found if g not in allowed))


#: Sentences of torch's weights-only message that tell the user to switch safety off.
_ADVICE = re.compile(r'(re-run|weights_only\W+set to\W+false|add_safe_globals|safe_globals\(|'
                     r'check the documentation|trust)', re.IGNORECASE)


def _unpickler_reason(message: str) -> Optional[str]:
    """torch's own reason for a weights-only refusal, without its advice to turn it off."""
    text = re.split(r'Check the documentation', message)[0]
    if 'WeightsUnpickler error:' in text:
        text = text.split('WeightsUnpickler error:', 1)[1]
    else:  # torch's header paragraph, then the reason
        text = '\n\n'.join(p for p in re.split(r'\n\s*\n', text)[1:]) or text
    sentences = re.split(r'(?<=[.!?])\s+', ' '.join(text.split()))
    kept = [s for s in sentences if s and not _ADVICE.search(s)
            and not s.lower().startswith(('weights only load failed', 'this file can still',
                                          '(1)', '(2)', 'in pytorch 2.6'))]
    reason = ' '.join(kept).rstrip('.').strip()
    return reason or None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    line = text[0].strip() if text else ''
    return f'{type(e).__name__}: {line}' if line else type(e).__name__


def _is_zip(f) -> bool:
    try:
        if isinstance(f, (str, os.PathLike)):
            return zipfile.is_zipfile(f)
        pos = f.tell()
        try:
            return zipfile.is_zipfile(f)
        finally:
            f.seek(pos)
    except (OSError, ValueError):
        return False


def _head(f) -> Optional[bytes]:
    """The first bytes of the file (None when they cannot be read here: torch will say)."""
    try:
        if isinstance(f, (str, os.PathLike)):
            with open(f, 'rb') as fh:
                return fh.read(16)
        pos = f.tell()
        try:
            return f.read(16)
        finally:
            f.seek(pos)
    except (OSError, ValueError, AttributeError):
        return None


def check_zip_crc(f) -> None:
    """Check the CRC-32 of every record of a zip-format checkpoint (torch does not).

    Args:
        f: Path or seekable binary file object of a ``torch.save`` zip file.

    Raises:
        CheckpointSafetyError: A record's data does not match its CRC, or the zip structure
            is damaged. Records written with CRCs disabled (stored CRC 0) are not checked.
    """
    pos = None if isinstance(f, (str, os.PathLike)) else f.tell()
    try:
        with zipfile.ZipFile(f) as zf:
            for info in zf.infolist():
                if info.CRC == 0 and info.file_size:
                    continue  # torch.serialization.set_crc32_options(False) writes 0
                try:
                    with zf.open(info) as fh:  # zipfile checks the CRC at the end of the record
                        while fh.read(_CHUNK):
                            pass
                except zipfile.BadZipFile as e:
                    if 'CRC' not in str(e):
                        raise
                    raise CheckpointSafetyError(
                        f'{_describe(f)} is corrupted: record {info.filename} does not match '
                        'its CRC-32 (bit flips or an overwritten part); it was not loaded'
                    ) from None
    except CheckpointSafetyError:
        raise
    except Exception as e:  # noqa: BLE001  (zipfile raises many types on damaged files)
        raise CheckpointSafetyError(
            f'{_describe(f)} is not a readable PyTorch checkpoint (damaged zip: '
            f'{_first_line(e)})') from None
    finally:
        if pos is not None:
            f.seek(pos)


def safe_torch_load(f: Union[str, os.PathLike, io.IOBase], map_location: Any = None,
                    check_crc: bool = True) -> Any:
    """``torch.load`` with ``weights_only=True`` and mmengine's own globals allowed.

    Args:
        f: Path or binary file object.
        map_location: As for :func:`torch.load`.
        check_crc (bool): Verify the CRC-32 of every record of a zip-format file before
            loading (see :func:`check_zip_crc`). Default: True.

    Returns:
        The unpickled object (tensors, containers, builtins, mmengine's message hub).

    Raises:
        CheckpointSafetyError: The file pickles any other global (it is refused and nothing
            runs), or it cannot be read as a PyTorch checkpoint for any reason; always one
            line naming the file. :class:`CheckpointNotFoundError` when it does not exist.
    """
    if isinstance(f, (str, os.PathLike)):
        if not os.path.exists(f):
            raise CheckpointNotFoundError(f'checkpoint not found: {os.fspath(f)}')
        if os.path.isdir(f):
            raise CheckpointSafetyError(f'{_describe(f)} is a directory, not a checkpoint file')
    zip_format = _is_zip(f)
    if zip_format and check_crc:
        check_zip_crc(f)
    if not zip_format:
        head = _head(f)
        if head is not None and head.startswith(b'PK'):
            raise CheckpointSafetyError(
                f'{_describe(f)} is not a readable PyTorch checkpoint: a zip file whose '
                'directory at the end is missing or damaged (truncated: an interrupted copy or '
                'download?)')
        if head is not None and not head.startswith(b'\x80'):
            raise CheckpointSafetyError(
                f'{_describe(f)} is not a readable PyTorch checkpoint: neither torch\'s zip '
                f'format nor a legacy pickle (it starts with {head[:16]!r})')
    try:
        with torch.serialization.safe_globals(MMENGINE_CHECKPOINT_GLOBALS):
            return torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        message = str(e)
        if 'Weights only load failed' not in message:  # ours (getattr) or a broken pickle
            raise CheckpointSafetyError(
                f'{_describe(f)} is not a readable PyTorch checkpoint ({_first_line(e)})'
            ) from None
        bad = _unsafe_globals(f, message)
        if bad:
            raise CheckpointSafetyError(
                f'Refusing to load {_describe(f)}: it pickles {", ".join(bad)}, which mmengine '
                'never writes into a checkpoint, so unpickling it could execute code. Nothing was '
                'executed; load only checkpoints written by mmengine/torch.save of tensors.'
            ) from None
        reason = _unpickler_reason(message) or 'the weights-only unpickler refused it'
        raise CheckpointSafetyError(
            f'Refusing to load {_describe(f)}: {reason}. Nothing was executed.'
            if zip_format else
            f'{_describe(f)} is not a readable PyTorch checkpoint ({reason})') from None
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001  (torch raises KeyError, OSError, ... on bad files)
        raise CheckpointSafetyError(
            f'{_describe(f)} is not a readable PyTorch checkpoint (truncated or corrupted?): '
            f'{_first_line(e)}') from None
