"""Low-level file handling shared by every layer: safe checkpoint loading, the one downloader,
atomic writes and the sha256 records of the checkpoints we write.

Imports only the standard library, numpy, torch, mmengine and :mod:`mmdet_spine.errors`.
"""
from .atomic_write import TMP_SUFFIX, atomic_write_bytes
from .download import download, sha256sum
from .integrity import (SHA256_SUFFIX, read_recorded_sha256, remove_checkpoint,
                        sha256_record_path, verify_recorded_sha256, write_checkpoint_bytes)
from .safe_load import (MMENGINE_CHECKPOINT_GLOBALS, CheckpointNotFoundError, check_zip_crc,
                        safe_torch_load)

__all__ = ['safe_torch_load', 'MMENGINE_CHECKPOINT_GLOBALS', 'download', 'sha256sum',
           'CheckpointNotFoundError', 'check_zip_crc', 'atomic_write_bytes', 'TMP_SUFFIX',
           'SHA256_SUFFIX', 'sha256_record_path', 'read_recorded_sha256',
           'verify_recorded_sha256', 'write_checkpoint_bytes', 'remove_checkpoint']
