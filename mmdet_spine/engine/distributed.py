"""Distributed set-up that also works on machines without CUDA.

mmengine 0.10.7 assumes CUDA for the ``pytorch`` launcher: it calls ``torch.cuda.set_device``
and wraps the model with ``device_ids=[LOCAL_RANK]``, and the default runtime asks for NCCL.
On a CPU-only machine :func:`setup_distributed` initialises the process group with gloo
itself (so the runner skips its own CUDA-only init) and makes DDP wrap a CPU model.

Failure behaviour: every collective times out after ``env_cfg.dist_cfg.timeout`` seconds
(default 1800), so a rank whose peer hangs exits with an error instead of waiting forever; a
peer that dies closes its gloo connections and the others fail at their next collective;
torchrun (``tools/dist_train.sh``) also stops the remaining workers when one exits with an
error. NCCL runs get ``TORCH_NCCL_ASYNC_ERROR_HANDLING=1`` for the same behaviour.
"""
import datetime
import os

import torch
import torch.distributed as dist
from mmengine.config import Config

from .cli import UserError


def setup_distributed(cfg: Config, launcher: str) -> None:
    """Prepare ``cfg`` (and, without CUDA, the process group) for ``launcher``.

    Args:
        cfg (Config): The config the runner will be built from; modified in place.
        launcher (str): 'none', 'pytorch', 'slurm' or 'mpi'.
    """
    cfg.launcher = launcher
    if launcher == 'none':
        return
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    timeout = dist_cfg.get('timeout', 1800)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise UserError(f'env_cfg.dist_cfg.timeout must be a positive number of seconds, got '
                         f'{timeout!r}')
    dist_cfg['timeout'] = timeout  # mmengine's init_dist turns it into a timedelta
    # NCCL: a failed or timed-out collective raises (and the process exits) instead of hanging.
    os.environ.setdefault('TORCH_NCCL_ASYNC_ERROR_HANDLING', '1')
    if torch.cuda.is_available():
        return
    dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None  # CPU modules take no device ids
    cfg.model_wrapper_cfg = wrapper
    if dist.is_initialized() or launcher != 'pytorch':
        return  # slurm/mpi clusters come with GPUs; mmengine initialises those itself
    rank = int(os.environ['RANK'])
    world_size = int(os.environ['WORLD_SIZE'])
    dist.init_process_group('gloo', rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=timeout))
