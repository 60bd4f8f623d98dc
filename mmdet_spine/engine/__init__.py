"""Runtime pieces: safe checkpoint loading, CPU-friendly distributed set-up."""
from .checkpoint_safety import (CheckpointSafetyError, install_safe_loaders, safe_torch_load)
from .distributed import setup_distributed
from .hooks import FlushDenormalHook

install_safe_loaders()

__all__ = ['CheckpointSafetyError', 'FlushDenormalHook', 'install_safe_loaders', 'safe_torch_load', 'setup_distributed']
