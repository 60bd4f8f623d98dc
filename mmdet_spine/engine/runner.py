"""``SpineRunner``: mmengine's ``Runner`` with crash-safe, verified checkpoints.

Selected by ``runner_type = 'SpineRunner'`` in ``configs/_base_/default_runtime.py`` (mmdet's
``tools/train.py`` and ours build ``RUNNERS.build(cfg)`` when a config sets ``runner_type``);
registered in mmengine's root ``RUNNERS``, so every scope finds it. Compared with ``Runner``:

* ``save_checkpoint`` refuses weights holding NaN/Inf, and writes local checkpoints through the
  ``'atomic_local'`` file backend (temporary file + fsync + rename, then a ``<name>.sha256``
  record; see :mod:`mmdet_spine.engine.atomic_checkpoint`), whichever hook asks for them;
* auto-resume (``resume=True`` without ``load_from``) continues from
  :func:`~mmdet_spine.engine.find_resumable_checkpoint` (the newest complete checkpoint that
  verifies) instead of whatever ``last_checkpoint`` names;
* a :class:`~mmdet_spine.engine.ShapeMismatchReportHook` is always registered, so loading
  weights whose shapes differ from the model lists them in one warning.

Loading itself is safe for every runner: the checkpoint schemes are mmdet-spine's
(:mod:`mmdet_spine.engine.checkpoint_safety`).
"""
import os.path as osp

from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .atomic_checkpoint import atomic_backend_args, check_finite_weights, find_resumable_checkpoint
from .checkpoint_loading import ShapeMismatchReportHook

__all__ = ['SpineRunner']


@RUNNERS.register_module()
class SpineRunner(Runner):
    """mmengine ``Runner`` whose checkpoints are atomic, sha256-recorded and finite.

    Takes every argument of :class:`mmengine.runner.Runner`; see the module docstring.
    """

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        super().register_hooks(default_hooks, custom_hooks)
        if not any(isinstance(h, ShapeMismatchReportHook) for h in self._hooks):
            self.register_hook(ShapeMismatchReportHook())

    def save_checkpoint(self, out_dir, filename, file_client_args=None, save_optimizer=True,
                        save_param_scheduler=True, meta=None, by_epoch=True,
                        backend_args=None):
        """``Runner.save_checkpoint`` (same arguments), finite weights only, atomic locally.

        Raises:
            NonFiniteLossError: The model's weights hold NaN/Inf; nothing is written.
        """
        model = self.model.module if is_model_wrapper(self.model) else self.model
        check_finite_weights(model.state_dict(), osp.join(str(out_dir), filename))
        if file_client_args is None:
            backend_args = atomic_backend_args(out_dir, backend_args)
        return super().save_checkpoint(
            out_dir, filename, file_client_args=file_client_args,
            save_optimizer=save_optimizer, save_param_scheduler=save_param_scheduler,
            meta=meta, by_epoch=by_epoch, backend_args=backend_args)

    def load_or_resume(self) -> None:
        """Resume from the newest complete, verified checkpoint when asked to auto-resume."""
        if not self._has_loaded and self._resume and self._load_from is None:
            found = find_resumable_checkpoint(self.work_dir)
            if found is None:
                self.logger.info(f'resume: no complete checkpoint in {self.work_dir}; '
                                 'training from the start')
                self._resume = False
            else:
                self._load_from = found
        return super().load_or_resume()
