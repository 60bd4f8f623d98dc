"""Checkpoint loading that never executes code, and that works on torch >= 2.6.

torch >= 2.6 loads with ``weights_only=True`` by default, which refuses the few Python
objects mmengine itself pickles into a checkpoint (its ``HistoryBuffer``, numpy arrays and
scalars in the message hub), so mmengine 0.10.7's ``--resume`` and ``tools/test.py`` fail with
``UnpicklingError``. Conversely, mmengine loads ``http(s)://`` checkpoints through
``torch.hub.load_state_dict_from_url``, which unpickles without restriction by default: a downloaded
file could run arbitrary code.

:func:`install_safe_loaders` replaces mmengine's local and http(s) checkpoint loaders with
ones that always use ``weights_only=True`` and allow exactly the globals mmengine writes
(:data:`MMENGINE_CHECKPOINT_GLOBALS`). Any other pickled global is refused with one line that
names it; nothing is executed.
"""
import hashlib
import io
import os
import os.path as osp
import pickle
import re
import shutil
import tempfile
from typing import Any, List, Optional, Union
from urllib.parse import urlparse

import numpy as np
import torch

__all__ = ['CheckpointSafetyError', 'MMENGINE_CHECKPOINT_GLOBALS', 'safe_torch_load',
           'install_safe_loaders', 'download_checkpoint']


class CheckpointSafetyError(pickle.UnpicklingError):
    """A checkpoint was refused because loading it could execute code, or it is unreadable."""


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
    return f"'{f}'" if isinstance(f, (str, os.PathLike)) else 'the checkpoint stream'


def _unsafe_globals(f) -> List[str]:
    if not isinstance(f, (str, os.PathLike)):
        return []
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(f)
    except Exception:  # not a zip checkpoint: the error message will say so
        return []
    allowed = {g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
               for g in MMENGINE_CHECKPOINT_GLOBALS}
    return [g for g in found if g not in allowed]


def safe_torch_load(f: Union[str, os.PathLike, io.IOBase], map_location: Any = None) -> Any:
    """``torch.load`` with ``weights_only=True`` and mmengine's own globals allowed.

    Args:
        f: Path or binary file object.
        map_location: As for :func:`torch.load`.

    Raises:
        CheckpointSafetyError: The file pickles any other global (it is refused and nothing
            runs), or it is not a readable PyTorch checkpoint.
    """
    try:
        with torch.serialization.safe_globals(MMENGINE_CHECKPOINT_GLOBALS):
            return torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        bad = _unsafe_globals(f)
        if bad:
            raise CheckpointSafetyError(
                f'Refusing to load {_describe(f)}: it pickles {", ".join(bad)}, which mmengine '
                'never writes into a checkpoint, so unpickling it could execute code. Nothing was '
                'executed; load only checkpoints written by mmengine/torch.save of tensors.'
            ) from None
        reason = _unpickler_reason(e)
        if reason and _is_zip_checkpoint(f):
            raise CheckpointSafetyError(f'Refusing to load {_describe(f)}: {reason}. Nothing '
                                        'was executed.') from None
        raise CheckpointSafetyError(
            f'{_describe(f)} is not a readable PyTorch checkpoint ({reason or _first_line(e)})'
        ) from None
    except (RuntimeError, EOFError, ValueError) as e:
        raise CheckpointSafetyError(
            f'{_describe(f)} is not a readable PyTorch checkpoint (truncated or corrupted?): '
            f'{_first_line(e)}') from None


def _is_zip_checkpoint(f) -> bool:
    """True for the zip format ``torch.save`` has written since torch 1.6."""
    import zipfile
    try:
        if isinstance(f, (str, os.PathLike)):
            return zipfile.is_zipfile(f)
        pos = f.tell()
        try:
            return zipfile.is_zipfile(f)
        finally:
            f.seek(pos)
    except OSError:
        return False


def _unpickler_reason(e: BaseException) -> Optional[str]:
    """The weights-only unpickler's own reason, which torch buries in a long message."""
    text = str(e)
    if 'WeightsUnpickler error:' not in text:
        return None
    reason = text.split('WeightsUnpickler error:', 1)[1].split('Check the documentation')[0]
    return ' '.join(reason.split()).rstrip('.') or None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


_HASH_SUFFIX = re.compile(r'-([a-f0-9]{8,64})\.')


def download_checkpoint(url: str, model_dir: Optional[str] = None, progress: bool = True,
                        expected_sha256: Optional[str] = None) -> str:
    """Download ``url`` into the torch hub cache (``$TORCH_HOME/checkpoints``) and return the path.

    The file is written to a temporary name and renamed only once complete and verified, so a
    partial download never becomes a cache hit. The expected sha256 (or prefix) comes from
    ``expected_sha256`` or, mmdet-style, from a ``-<hex>.`` suffix of the file name; a mismatch
    deletes the file and raises.
    """
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    name = osp.basename(urlparse(url).path) or 'checkpoint.pth'
    cached = osp.join(model_dir, name)
    if expected_sha256 is None:
        m = _HASH_SUFFIX.search(name)
        expected_sha256 = m.group(1) if m else None
    if osp.isfile(cached):
        return cached
    fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.partial', dir=model_dir)
    os.close(fd)
    try:
        # the zoo's downloader also refuses a download shorter than its Content-Length
        # (torch.hub's keeps a connection dropped mid-file as if complete)
        from ..zoo.cache import download
        download(url, tmp, progress=progress, hand_path=cached)
        if expected_sha256:
            digest = _sha256(tmp)
            if not digest.startswith(expected_sha256):
                raise RuntimeError(f'Checksum mismatch for {url}: expected sha256 '
                                   f'{expected_sha256}..., got {digest}; the file was removed')
        shutil.move(tmp, cached)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return cached


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def _load_from_local(filename, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_torch_load(filename, map_location=map_location)


def _load_from_http(filename, map_location=None, model_dir=None, progress=os.isatty(0)):
    from mmengine.dist import get_dist_info
    rank, world_size = get_dist_info()
    if rank == 0:
        path = download_checkpoint(filename, model_dir=model_dir, progress=progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            path = download_checkpoint(filename, model_dir=model_dir, progress=False)
    return safe_torch_load(path, map_location=map_location)


def _load_url(url, model_dir=None, map_location=None, progress=True, check_hash=False,
              file_name=None):
    """Drop-in for mmengine's ``load_url`` (used by torchvision://, openmmlab://, mmcls://)."""
    path = download_checkpoint(url, model_dir=model_dir, progress=progress)
    return safe_torch_load(path, map_location=map_location)


_installed = False


def install_safe_loaders() -> None:
    """Make every mmengine checkpoint path go through :func:`safe_torch_load`.

    Registers the local and ``http(s)://`` loaders in mmengine's ``CheckpointLoader`` (its
    documented extension point) and points the module-level names that the ``openmmlab://``,
    ``torchvision://`` and ``mmcls://`` loaders call at the same functions. Idempotent.
    """
    global _installed
    if _installed:
        return
    from mmengine.runner import checkpoint as ckpt
    ckpt.CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local, force=True)
    ckpt.CheckpointLoader.register_scheme(prefixes=('http://', 'https://'),
                                          loader=_load_from_http, force=True)
    ckpt.load_from_local = _load_from_local
    ckpt.load_from_http = _load_from_http
    ckpt.load_url = _load_url
    _installed = True
