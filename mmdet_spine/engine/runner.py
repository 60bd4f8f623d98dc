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
  weights whose shapes differ from the model lists them in one warning;
* ``optim_wrapper.type='AmpOptimWrapper'`` on a machine without an accelerator is one line
  naming ``CPUAmpOptimWrapper`` (bfloat16 autocast on the CPU) instead of mmengine's
  assertion traceback.

Loading itself is safe for every runner: the checkpoint schemes are mmdet-spine's
(:mod:`mmdet_spine.engine.checkpoint_safety`).
"""
import os.path as osp

from mmengine.device import is_cuda_available, is_mlu_available, is_musa_available, \
    is_npu_available
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..errors import ConfigError

from .atomic_checkpoint import atomic_backend_args, check_finite_weights, find_resumable_checkpoint
from .checkpoint_loading import ShapeMismatchReportHook

__all__ = ['SpineRunner', 'check_amp_device']


def _accelerator_available() -> bool:
    return (is_cuda_available() or is_npu_available() or is_mlu_available()
            or is_musa_available())


def check_amp_device(optim_wrapper) -> None:
    """Raise :class:`ConfigError` when ``optim_wrapper`` (a config dict) asks for mmengine's
    ``AmpOptimWrapper`` and there is no accelerator, which that wrapper asserts on.

    Args:
        optim_wrapper (dict | OptimWrapper): The runner's ``optim_wrapper`` argument.
    """
    if not isinstance(optim_wrapper, dict) or _accelerator_available():
        return
    wrapper_type = optim_wrapper.get('type', 'OptimWrapper')
    if wrapper_type in ('AmpOptimWrapper', AmpOptimWrapper):
        raise ConfigError("optim_wrapper.type='AmpOptimWrapper' needs a GPU (mmengine's "
                          "float16/bfloat16 AMP); on the CPU use "
                          "optim_wrapper.type='CPUAmpOptimWrapper' (bfloat16 autocast) or "
                          "'OptimWrapper' (float32), or tools/train.py --amp, which picks one")


@RUNNERS.register_module()
class SpineRunner(Runner):
    """mmengine ``Runner`` whose checkpoints are atomic, sha256-recorded and finite.

    Takes every argument of :class:`mmengine.runner.Runner`; see the module docstring.
    """

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        super().register_hooks(default_hooks, custom_hooks)
        if not any(isinstance(h, ShapeMismatchReportHook) for h in self._hooks):
            self.register_hook(ShapeMismatchReportHook())

    def build_optim_wrapper(self, optim_wrapper):
        """``Runner.build_optim_wrapper``, after :func:`check_amp_device`."""
        check_amp_device(optim_wrapper)
        return super().build_optim_wrapper(optim_wrapper)

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
