"""Runtime pieces: the SpineRunner, safe and verified checkpoints, NaN guard, reproducible
resume, distributed set-up, one-line errors for the tools.

Importing it registers (through mmengine's extension points only) the safe checkpoint schemes
(``CheckpointLoader.register_scheme``), the ``'atomic_local'`` file backend
(``mmengine.fileio.register_backend``), ``SpineRunner`` (``RUNNERS``) and the hooks
(``HOOKS``). Nothing of mmengine, mmcv or mmdet is reassigned.
"""
from ..errors import CheckpointIntegrityError, CheckpointSafetyError, TrainingAborted, UserError
from ..fileio import MMENGINE_CHECKPOINT_GLOBALS, safe_torch_load
from .atomic_checkpoint import (ATOMIC_BACKEND, AtomicCheckpointHook, AtomicLocalBackend,
                                atomic_save_checkpoint, find_resumable_checkpoint,
                                verify_checkpoint)
from .checkpoint_loading import ShapeMismatchReportHook, report_shape_mismatches, shape_mismatches
from .checkpoint_safety import SAFE_SCHEMES, download_checkpoint, install_safe_loaders
from .cpu_amp import CPUAmpOptimWrapper, cpu_has_native_bf16
from .distributed import setup_distributed
from .hooks import ChannelsLastHook, FlushDenormalHook, FuseConvBNHook
from .nonfinite_loss import NonFiniteLossError, NonFiniteLossHook
from .reproducibility import EpochSeedHook
from .runner import SpineRunner

install_safe_loaders()

__all__ = ['ATOMIC_BACKEND', 'ChannelsLastHook', 'AtomicCheckpointHook', 'AtomicLocalBackend',
           'CheckpointIntegrityError', 'CheckpointSafetyError', 'CPUAmpOptimWrapper',
           'EpochSeedHook',
           'FlushDenormalHook', 'FuseConvBNHook', 'MMENGINE_CHECKPOINT_GLOBALS', 'NonFiniteLossError',
           'NonFiniteLossHook', 'SAFE_SCHEMES', 'ShapeMismatchReportHook', 'SpineRunner',
           'TrainingAborted', 'UserError', 'atomic_save_checkpoint', 'download_checkpoint',
           'find_resumable_checkpoint', 'install_safe_loaders', 'report_shape_mismatches',
           'cpu_has_native_bf16', 'safe_torch_load', 'setup_distributed', 'shape_mismatches', 'verify_checkpoint']
