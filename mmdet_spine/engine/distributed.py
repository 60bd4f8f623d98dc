"""Distributed set-up that also works on machines without CUDA.

mmengine 0.10.7 assumes CUDA for the ``pytorch`` launcher: it calls ``torch.cuda.set_device``
and wraps the model with ``device_ids=[LOCAL_RANK]``, and the default runtime asks for NCCL.
On a CPU-only machine :func:`setup_distributed` initialises the process group with gloo
itself (so the runner skips its own CUDA-only init) and makes DDP wrap a CPU model.

Failure behaviour: every collective times out after ``env_cfg.dist_cfg.timeout`` seconds
(default 1800), so a rank whose peer hangs exits with an error instead of waiting forever; a
peer that dies closes its gloo connections and the others fail at their next collective;
the launcher (``tools/dist_train.sh``: :mod:`mmdet_spine.engine.launch`, torchrun's agent)
also stops the remaining workers when one exits with an error. NCCL runs get
``TORCH_NCCL_ASYNC_ERROR_HANDLING=1`` for the same behaviour.

Reporting: a rank that fails writes its one-line reason (:func:`record_failure`) into the
error file torchrun's agent gives every worker (``TORCHELASTIC_ERROR_FILE``) instead of
printing a traceback; the launcher prints one line for the whole job, naming the rank that
failed first and why (a rank killed by a signal, or a rank's own error, before the ranks that
only lost their connection to it: :func:`peer_failure`).
"""
import datetime
import json
import os
import re
import time
from typing import Optional, Tuple

import torch
import torch.distributed as dist
from mmengine.config import Config

from ..errors import UserError

__all__ = ['setup_distributed', 'peer_failure', 'record_failure', 'PEER_LOST']

#: ``kind`` of a failure that only says a collective with another rank failed.
PEER_LOST = 'peer-lost'
_PEER_MARKERS = re.compile(
    r'(connection (closed|reset) by peer|broken pipe|timed out|timeout|'
    r'socket|gloo|nccl|watchdog|process group|collective operation|communicator)',
    re.IGNORECASE)


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


def _world_size() -> int:
    try:
        return int(os.environ.get('WORLD_SIZE', '1'))
    except ValueError:
        return 1


def peer_failure(e: BaseException) -> Optional[Tuple[int, str]]:
    """``(1, one-line message)`` when ``e`` is a failed collective of a distributed run (a
    peer rank died, hung past the timeout or closed its connection), else None."""
    if _world_size() <= 1:
        return None
    dist_error = getattr(torch.distributed, 'DistError', None)
    text = str(e).strip()
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(e).__name__)
    is_dist = dist_error is not None and isinstance(e, dist_error)
    if not is_dist and not (isinstance(e, (RuntimeError, OSError, ConnectionError))
                            and _PEER_MARKERS.search(text)):
        return None
    first = re.sub(r'^\[[^\]]*\.(cc|cpp|h):\d+\]\s*', '', first)  # gloo's source location
    return 1, (f'a collective with the other ranks failed ({first}): another rank died or '
               'hung (the launcher names it)')


def record_failure(message: str, kind: str, exit_code: int) -> bool:
    """Write a rank's one-line failure into torchrun's per-worker error file.

    Args:
        message (str): The one line to report.
        kind (str): ``'user'``, ``'aborted'`` or :data:`PEER_LOST`.
        exit_code (int): The code the rank exits with.

    Returns:
        bool: False when there is no error file (not started by torchrun's agent): the
        caller prints the line itself.
    """
    path = os.environ.get('TORCHELASTIC_ERROR_FILE')
    if not path:
        return False
    data = {'message': message, 'timestamp': str(int(time.time())),
            'mmdet_spine': {'kind': kind, 'exit_code': exit_code,
                            'time': time.time()}}
    try:
        with open(path, 'w') as f:
            json.dump(data, f)
    except OSError:
        return False
    return True
