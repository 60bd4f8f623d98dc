"""Checkpoints that are complete or absent, verified when loaded, and never hold NaN/Inf weights.

mmengine 0.10.7 writes ``epoch_N.pth`` and ``last_checkpoint`` in place, so a run killed while
saving leaves a truncated checkpoint that ``last_checkpoint`` may already name, and with
``max_keep_ckpts`` it deletes the previous checkpoint *before* writing the new one. Here,
through mmengine's extension points only:

* :class:`AtomicLocalBackend`, registered as the file backend ``'atomic_local'``
  (``mmengine.fileio.register_backend``): mmengine's ``save_checkpoint`` writes through
  ``get_file_backend(filename, backend_args)``, and with ``backend_args=dict(backend=
  'atomic_local')`` its ``put`` serialises to a temporary file, fsyncs, renames onto the final
  name and then records the file's sha256 in ``<name>.sha256``
  (:func:`mmdet_spine.fileio.write_checkpoint_bytes`). :class:`~mmdet_spine.engine.SpineRunner`
  and :class:`AtomicCheckpointHook` select it for every local checkpoint.
* :class:`AtomicCheckpointHook` (the default ``checkpoint`` hook of our configs) also writes
  ``last_checkpoint`` atomically, only after the checkpoint it names is complete, deletes
  checkpoints beyond ``max_keep_ckpts`` only after that, and on the next save or resume
  removes what a run killed in between left behind (temporary files, outdated checkpoints).
* :func:`find_resumable_checkpoint` is what ``--resume`` (without a path) continues from:
  the newest complete checkpoint that verifies, whatever ``last_checkpoint`` says.
"""
import glob
import logging
import os
import os.path as osp
import re
import zipfile
from typing import Dict, List, Optional, Tuple

from mmengine.dist import is_main_process
from mmengine.fileio import get_file_backend, register_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmdet.registry import HOOKS

from ..errors import CheckpointSafetyError
from ..fileio import (SHA256_SUFFIX, TMP_SUFFIX, atomic_write_bytes, check_zip_crc,
                      remove_checkpoint, verify_recorded_sha256, write_checkpoint_bytes)
from .nonfinite_loss import NonFiniteLossError, non_finite_tensors

__all__ = ['AtomicCheckpointHook', 'AtomicLocalBackend', 'ATOMIC_BACKEND',
           'atomic_backend_args', 'atomic_save_checkpoint', 'atomic_write_bytes',
           'check_finite_weights', 'find_resumable_checkpoint', 'is_complete_checkpoint',
           'verify_checkpoint', 'TMP_SUFFIX']

#: Name of the file backend registered with mmengine.
ATOMIC_BACKEND = 'atomic_local'


class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` whose ``put`` is atomic and records the file's sha256.

    Everything else (``get``, ``join_path``, ``isfile``, ``remove``, ...) is ``LocalBackend``'s.
    Selected with ``backend_args=dict(backend='atomic_local')``.
    """

    def put(self, obj: bytes, filepath) -> None:
        """Write ``obj`` to ``filepath`` (tmp + fsync + rename) and then ``filepath.sha256``."""
        write_checkpoint_bytes(obj, str(filepath))


try:
    register_backend(ATOMIC_BACKEND, AtomicLocalBackend)
except ValueError:  # already registered (this module was imported twice, e.g. reloaded)
    pass


def _is_local(filename: str, backend_args: Optional[dict] = None) -> bool:
    try:
        return isinstance(get_file_backend(filename, backend_args=backend_args), LocalBackend)
    except Exception:  # noqa: BLE001  (unknown prefixes/backends: not ours to make atomic)
        return False


def atomic_backend_args(out_dir: str, backend_args: Optional[dict]) -> Optional[dict]:
    """``backend_args`` for saving into ``out_dir``: ``'atomic_local'`` for local directories
    when nothing else was asked for, otherwise ``backend_args`` unchanged."""
    if backend_args is None and _is_local(str(out_dir)) and '://' not in str(out_dir):
        return dict(backend=ATOMIC_BACKEND)
    return backend_args


def check_finite_weights(state_dict: Dict, filename: str) -> None:
    """Refuse to save weights holding NaN/Inf.

    Raises:
        NonFiniteLossError: naming the file and (up to three of) the tensors.
    """
    bad = non_finite_tensors(state_dict) if isinstance(state_dict, dict) else None
    if bad:
        raise NonFiniteLossError(
            f'Refusing to write checkpoint {filename}: the weights hold NaN/Inf values '
            f'({", ".join(bad)}). The previous checkpoint is left untouched.')


def atomic_save_checkpoint(checkpoint: dict, filename: str, file_client_args=None,
                           backend_args=None) -> None:
    """mmengine's ``save_checkpoint`` with the finiteness check, atomic on local disks.

    Args:
        checkpoint (dict): What mmengine saves (``meta``, ``state_dict``, ...).
        filename (str): Destination.
        file_client_args, backend_args: As for mmengine's ``save_checkpoint``; non-local
            destinations are written by mmengine's own writer after the finiteness check.

    Raises:
        NonFiniteLossError: ``checkpoint['state_dict']`` holds NaN/Inf; nothing is written.
    """
    from mmengine.runner.checkpoint import save_checkpoint
    state = checkpoint.get('state_dict') if isinstance(checkpoint, dict) else None
    check_finite_weights(state, filename)
    if file_client_args is None:
        backend_args = atomic_backend_args(osp.dirname(str(filename)) or '.', backend_args)
    save_checkpoint(checkpoint, str(filename), file_client_args=file_client_args,
                    backend_args=backend_args)


def is_complete_checkpoint(path: str) -> bool:
    """True when ``path`` is a whole ``torch.save`` zip file (its central directory is read,
    which a truncated file lacks); cheap, it does not unpickle anything."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith('data.pkl') for n in zf.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def verify_checkpoint(path: str) -> Optional[str]:
    """Why ``path`` cannot be resumed from, or None when it is complete and verifies.

    Verifying means: the sha256 record written next to it matches, or (a checkpoint without a
    record) every zip record matches its CRC-32. Nothing is unpickled.
    """
    if not osp.isfile(path):
        return 'it does not exist'
    if not is_complete_checkpoint(path):
        return 'it is incomplete (no zip directory: a truncated write?)'
    try:
        if not verify_recorded_sha256(path):
            check_zip_crc(path)
    except CheckpointSafetyError as e:
        return f'it failed verification ({e})'
    return None


def _step_of(path: str) -> int:
    m = re.search(r'(\d+)\.pth$', osp.basename(path))
    return int(m.group(1)) if m else -1


def _kind_of(path: str) -> Optional[str]:
    m = re.match(r'(epoch|iter)_\d+\.pth$', osp.basename(path))
    return m.group(1) if m else None


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` (without a path) should continue from, or None.

    The newest (highest step) complete ``epoch_*.pth``/``iter_*.pth`` that verifies (see
    :func:`verify_checkpoint`), looked for in ``work_dir`` and in the directory that
    ``work_dir/last_checkpoint`` points into. ``last_checkpoint`` itself only decides between
    files of the same step and names the kind (epoch or iter) to look for; when it names a
    file that is older, missing, incomplete or does not verify, a warning says which file is
    resumed instead and why.
    """
    named = None
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
    if named and not _is_local(named):
        return named  # remote storage: mmengine's loader reads it; nothing to compare with
    dirs = {osp.abspath(work_dir)}
    if named:
        dirs.add(osp.abspath(osp.dirname(named) or work_dir))
    kinds = [_kind_of(named)] if named and _kind_of(named) else ['epoch', 'iter']
    candidates = {osp.abspath(p) for d in dirs for k in kinds
                  for p in glob.glob(osp.join(glob.escape(d), f'{k}_*.pth'))}
    if named:
        candidates.add(osp.abspath(named))
    # newest first; at equal steps the file last_checkpoint names, then the newest mtime
    order = sorted(candidates, key=lambda p: (
        _step_of(p), named is not None and p == osp.abspath(named),
        osp.getmtime(p) if osp.exists(p) else 0), reverse=True)
    rejected: List[Tuple[str, str]] = []
    for path in order:
        why = verify_checkpoint(path)
        if why is None:
            for bad, reason in rejected:
                print_log(f'Not resuming from {bad}: {reason}', logger='current',
                          level=logging.WARNING)
            if named and osp.abspath(named) != path:
                if not any(b == osp.abspath(named) for b, _ in rejected):
                    print_log(f'last_checkpoint names {named}, but {path} is newer and '
                              'complete; resuming from it', logger='current',
                              level=logging.WARNING)
                else:
                    print_log(f'resuming from {path}, the newest checkpoint that verifies',
                              logger='current', level=logging.WARNING)
            return path
        rejected.append((path, why))
    for bad, reason in rejected:
        print_log(f'Not resuming from {bad}: {reason}', logger='current',
                  level=logging.WARNING)
    return None


def _tmpl_regex(filename_tmpl: str) -> Optional[re.Pattern]:
    if filename_tmpl.count('{}') != 1:
        return None
    head, tail = filename_tmpl.split('{}')
    return re.compile(re.escape(head) + r'(\d+)' + re.escape(tail) + '$')


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with crash-safe, verified bookkeeping.

    Same arguments and behaviour as :class:`mmengine.hooks.CheckpointHook`, except that:
    local checkpoints are written atomically with a sha256 record (the ``'atomic_local'``
    file backend, unless ``backend_args`` asks for another) and never with NaN/Inf weights;
    ``last_checkpoint`` is replaced atomically and only once the checkpoint it names is
    complete; checkpoints beyond ``max_keep_ckpts`` are deleted only after the new one is
    safely written; and at the start of a run and after every save, temporary files and
    outdated checkpoints (with their records) left by a run killed in between are removed.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process():
            self._remove_leftovers(runner)

    # -- saving ---------------------------------------------------------------------------
    def _save_checkpoint_with_step(self, runner, step, meta):
        ckpt_filename = self.filename_tmpl.format(step)
        # every rank stops alike (SpineRunner checks too; a plain mmengine Runner does not)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        check_finite_weights(model.state_dict(),
                             self.file_backend.join_path(self.out_dir, ckpt_filename))
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        backend_args = (self.backend_args if self.file_client_args is not None else
                        atomic_backend_args(self.out_dir, self.backend_args))
        runner.save_checkpoint(
            self.out_dir, ckpt_filename, self.file_client_args,
            save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
            meta=meta, by_epoch=self.by_epoch, backend_args=backend_args, **self.args)
        if not is_main_process():
            return
        atomic_write_bytes(str(self.last_ckpt).encode(), osp.join(runner.work_dir,
                                                                  'last_checkpoint'))
        for old in outdated:
            self._remove(self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old)))
        self._remove_leftovers(runner)

    # -- clean-up -------------------------------------------------------------------------
    def _remove(self, path: str) -> None:
        if self.file_backend.isfile(path):
            if isinstance(self.file_backend, LocalBackend):
                remove_checkpoint(path)  # and its sha256 record
            else:
                self.file_backend.remove(path)
        elif self.file_backend.isdir(path):
            self.file_backend.rmtree(path)  # deepspeed checkpoints are directories

    def _remove_leftovers(self, runner) -> None:
        """Remove what a run killed mid-save or mid-clean-up left behind (local dirs only):
        temporary files, checkpoints older than the ones ``max_keep_ckpts`` keeps, and sha256
        records without their checkpoint."""
        for directory in {runner.work_dir, self.out_dir}:
            if not isinstance(directory, str) or not osp.isdir(directory):
                continue
            for tmp in glob.glob(osp.join(glob.escape(directory), f'.*{TMP_SUFFIX}')):
                runner.logger.warning(f'Removing {tmp}: an incomplete checkpoint left by a run '
                                      'that was killed while saving')
                remove_checkpoint(tmp)
        if not isinstance(self.out_dir, str) or not osp.isdir(self.out_dir) or \
                not isinstance(self.file_backend, LocalBackend):
            return
        pattern = _tmpl_regex(self.filename_tmpl)
        keep = list(getattr(self, 'keep_ckpt_ids', []) or [])
        if self.max_keep_ckpts > 0 and keep and pattern is not None:
            for name in sorted(os.listdir(self.out_dir)):
                m = pattern.match(name)
                if m and int(m.group(1)) not in keep and int(m.group(1)) < max(keep):
                    path = osp.join(self.out_dir, name)
                    runner.logger.warning(f'Removing {path}: beyond max_keep_ckpts='
                                          f'{self.max_keep_ckpts} (left by a run that was '
                                          'killed before it could delete it)')
                    remove_checkpoint(path)
        for record in glob.glob(osp.join(glob.escape(self.out_dir), f'*.pth{SHA256_SUFFIX}')):
            if not osp.exists(record[:-len(SHA256_SUFFIX)]):
                remove_checkpoint(record)


