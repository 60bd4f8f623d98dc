"""Checkpoints that are complete or absent, never truncated, and never hold NaN/Inf weights.

mmengine 0.10.7 writes ``epoch_N.pth`` and ``last_checkpoint`` in place, so a run killed while
saving leaves a truncated checkpoint that ``last_checkpoint`` may already name, and with
``max_keep_ckpts`` it deletes the previous checkpoint *before* writing the new one. Here:

* :func:`atomic_save_checkpoint` (installed as the writer behind ``Runner.save_checkpoint`` by
  :func:`install_atomic_checkpoints`) serialises to a temporary file in the same directory,
  fsyncs it, ``os.replace``-s it onto the final name and fsyncs the directory. It refuses to
  write a ``state_dict`` with non-finite floating values.
* :class:`AtomicCheckpointHook` (the default ``checkpoint`` hook of our configs) also writes
  ``last_checkpoint`` that way, only after the checkpoint it names is complete, and deletes
  checkpoints beyond ``max_keep_ckpts`` only after that.
* :func:`find_resumable_checkpoint` is what ``tools/train.py --resume`` resumes from: the file
  ``last_checkpoint`` names if it is a complete checkpoint, else the newest complete one.
"""
import glob
import logging
import io
import os
import os.path as osp
import re
import tempfile
import zipfile
from typing import Optional

import torch
from mmengine.dist import is_main_process
from mmengine.fileio import get_file_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmdet.registry import HOOKS

from .nonfinite_loss import NonFiniteLossError, non_finite_tensors

__all__ = ['AtomicCheckpointHook', 'atomic_save_checkpoint', 'atomic_write_bytes',
           'find_resumable_checkpoint', 'install_atomic_checkpoints', 'TMP_SUFFIX']

#: Suffix of the temporary files; a leftover one (the run was killed while saving) is
#: removed by :class:`AtomicCheckpointHook` at the start of the next run.
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


def atomic_write_bytes(data: bytes, path: str) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either the old file or the new one.

    Args:
        data (bytes): File content.
        path (str): Destination on a local file system.
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
        os.replace(tmp, path)
        _fsync_dir(directory)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def _is_local(filename: str, backend_args: Optional[dict]) -> bool:
    try:
        return isinstance(get_file_backend(filename, backend_args=backend_args), LocalBackend)
    except Exception:
        return False


_original_save_checkpoint = None


def atomic_save_checkpoint(checkpoint: dict, filename: str, file_client_args=None,
                           backend_args=None) -> None:
    """Drop-in for ``mmengine.runner.save_checkpoint``: atomic on local disks, finite only.

    Args:
        checkpoint (dict): What mmengine saves (``meta``, ``state_dict``, ...).
        filename (str): Destination.
        file_client_args, backend_args: As for mmengine's ``save_checkpoint``; non-local
            destinations are written by mmengine's own writer after the finiteness check.

    Raises:
        NonFiniteLossError: ``checkpoint['state_dict']`` holds NaN/Inf; nothing is written.
    """
    state = checkpoint.get('state_dict') if isinstance(checkpoint, dict) else None
    bad = non_finite_tensors(state) if isinstance(state, dict) else None
    if bad:
        raise NonFiniteLossError(
            f'Refusing to write checkpoint {filename}: the weights hold NaN/Inf values '
            f'({", ".join(bad)}). The previous checkpoint is left untouched.')
    if (file_client_args is not None or str(filename).startswith('pavi://')
            or not _is_local(str(filename), backend_args)):
        return _original_save_checkpoint(checkpoint, filename, file_client_args=file_client_args,
                                         backend_args=backend_args)
    with io.BytesIO() as buf:
        torch.save(checkpoint, buf)
        atomic_write_bytes(buf.getvalue(), str(filename))


_installed = False


def install_atomic_checkpoints() -> None:
    """Route mmengine's checkpoint writing through :func:`atomic_save_checkpoint`.

    ``Runner.save_checkpoint`` and ``CheckpointHook``'s publishing call the module-level
    ``save_checkpoint`` of ``mmengine.runner``; those names are pointed at our writer.
    Idempotent.
    """
    global _installed, _original_save_checkpoint
    if _installed:
        return
    import mmengine.runner as mm_runner
    from mmengine.runner import checkpoint as mm_ckpt
    from mmengine.runner import runner as mm_runner_mod
    _original_save_checkpoint = mm_ckpt.save_checkpoint
    mm_ckpt.save_checkpoint = atomic_save_checkpoint
    mm_runner_mod.save_checkpoint = atomic_save_checkpoint
    mm_runner.save_checkpoint = atomic_save_checkpoint
    _installed = True


def is_complete_checkpoint(path: str) -> bool:
    """True when ``path`` is a whole ``torch.save`` zip file (its central directory is read,
    which a truncated file lacks); cheap, it does not unpickle anything."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith('data.pkl') for n in zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _step_of(path: str) -> int:
    m = re.search(r'(\d+)\.pth$', osp.basename(path))
    return int(m.group(1)) if m else -1


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` (without a path) should continue from, or None.

    The file named in ``work_dir/last_checkpoint`` when it is complete; otherwise (a missing
    or truncated file, e.g. written by an older mmengine writer) the complete
    ``epoch_*.pth``/``iter_*.pth`` in ``work_dir`` with the highest step, with a warning.
    """
    named = None
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
    if named and (not _is_local(named, None) or is_complete_checkpoint(named)):
        return named
    candidates = glob.glob(osp.join(work_dir, 'epoch_*.pth')) + \
        glob.glob(osp.join(work_dir, 'iter_*.pth'))
    for path in sorted(candidates, key=lambda p: (_step_of(p), osp.getmtime(p)), reverse=True):
        if is_complete_checkpoint(path):
            if named:
                print_log(f'last_checkpoint names {named}, which is missing or incomplete; '
                          f'resuming from {path} instead', logger='current',
                          level=logging.WARNING)
            return path
    return None


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with crash-safe bookkeeping.

    Same arguments and behaviour as :class:`mmengine.hooks.CheckpointHook`, except that
    ``last_checkpoint`` is replaced atomically and only once the checkpoint it names is
    complete, checkpoints beyond ``max_keep_ckpts`` are deleted only after the new one is
    safely written, and temporary files left by a run killed while saving are removed at the
    start of the next run.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if not is_main_process():
            return
        for directory in {runner.work_dir, self.out_dir}:
            if not isinstance(directory, str) or not osp.isdir(directory):
                continue
            for tmp in glob.glob(osp.join(directory, f'.*{TMP_SUFFIX}')):
                runner.logger.warning(f'Removing {tmp}: an incomplete checkpoint left by a run '
                                      'that was killed while saving')
                os.remove(tmp)

    def _save_checkpoint_with_step(self, runner, step, meta):
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, ckpt_filename, self.file_client_args,
            save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
            meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        atomic_write_bytes(str(self.last_ckpt).encode(), osp.join(runner.work_dir,
                                                                  'last_checkpoint'))
        for old in outdated:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)  # deepspeed checkpoints are directories
