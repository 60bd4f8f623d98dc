"""Runtime pieces: safe and atomic checkpoints, NaN guard, reproducible resume, distributed set-up."""
from .checkpoint_safety import (CheckpointSafetyError, install_safe_loaders, safe_torch_load)
from .distributed import setup_distributed
from .hooks import FlushDenormalHook
from .nonfinite_loss import NonFiniteLossError, NonFiniteLossHook, TrainingAborted
from .atomic_checkpoint import (AtomicCheckpointHook, find_resumable_checkpoint,
                                install_atomic_checkpoints)
from .reproducibility import EpochSeedHook
from .checkpoint_loading import install_shape_mismatch_report, shape_mismatches

install_safe_loaders()
install_atomic_checkpoints()
install_shape_mismatch_report()

__all__ = ['CheckpointSafetyError', 'FlushDenormalHook', 'install_safe_loaders', 'safe_torch_load', 'setup_distributed',
           'AtomicCheckpointHook', 'EpochSeedHook', 'NonFiniteLossError', 'NonFiniteLossHook',
           'TrainingAborted', 'find_resumable_checkpoint', 'install_atomic_checkpoints',
           'install_shape_mismatch_report', 'shape_mismatches']
