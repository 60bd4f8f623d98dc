"""Make a resumed run draw the same random numbers as the uninterrupted run.

mmengine 0.10.7 re-seeds every RNG with the run's seed when it resumes, so a run resumed at
epoch k replays epoch 1's random stream (flips, crops, dropout) instead of epoch k+1's. The
sampler is fine (``DefaultSampler`` shuffles with ``seed + epoch``), the transforms are not.
:class:`EpochSeedHook` seeds python, numpy and torch at the start of every epoch from
``(seed, epoch[, rank])``, so each epoch's randomness depends on nothing that came before it
and resuming from an epoch checkpoint reproduces the uninterrupted run (with
``randomness.deterministic=True`` on CPU: bit for bit in our tests).
"""
import random

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop
from mmdet.registry import HOOKS


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 32-bit seed for ``epoch`` (0-based) derived from the run's ``seed`` (and ``rank``)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, epoch, rank]).generate_state(1)[0])


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Seed python/numpy/torch RNGs from ``(seed, epoch)`` before every training epoch.

    Epoch-based loops only (iteration-based loops are left alone). Dataloader workers get
    their seeds from mmengine's ``worker_init_fn`` (seed, rank, worker id), which does not
    depend on history either, so a resumed run matches unless ``persistent_workers=True``
    with ``num_workers > 0`` (their RNGs then carry over between epochs): a warning says so.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        cfg = runner.cfg.get('train_dataloader') or {}
        if cfg.get('persistent_workers') and cfg.get('num_workers', 0) > 0 and \
                (runner.cfg.get('randomness') or {}).get('deterministic'):
            runner.logger.warning(
                'EpochSeedHook: persistent dataloader workers keep their random state across '
                'epochs, so a resumed run will not repeat the uninterrupted run exactly; set '
                'train_dataloader.persistent_workers=False for exact resumption.')

    def before_train_epoch(self, runner) -> None:
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            return  # iteration-based loop
        seed = runner.seed if runner.seed is not None else 0
        diff_rank = (runner.cfg.get('randomness') or {}).get('diff_rank_seed', False)
        s = epoch_seed(seed, runner.epoch, get_rank() if diff_rank else 0)
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)
