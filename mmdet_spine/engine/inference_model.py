"""A config's model ready for inference-only tools (the benchmark, the ONNX export).

Args of :func:`build_inference_model` below; the model is built from ``cfg.model``, seeded,
initialised (its ``init_weights`` log kept quiet), loaded from a checkpoint through
mmengine's ``load_checkpoint`` (and so through mmdet-spine's safe checkpoint schemes),
SyncBN reverted to BN, and put in eval mode.
"""
import copy
import logging
from typing import Optional

import torch
import torch.nn as nn

__all__ = ['build_inference_model']


def build_inference_model(cfg, checkpoint: Optional[str] = None, seed: int = 0) -> nn.Module:
    """Build ``cfg.model`` for inference.

    Args:
        cfg (Config): A loaded config (mmdet_spine registered, default scope set).
        checkpoint (str, optional): Weights to load (a path or a ``zoo://`` / ``https://``
            name); default: the random initialisation.
        seed (int): Seed of the initialisation. Default: 0.
    """
    from mmdet.registry import MODELS
    from mmengine.logging import MMLogger
    from mmengine.model import revert_sync_batchnorm
    from mmengine.runner import load_checkpoint
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every parameter at INFO
    try:
        torch.manual_seed(seed)
        model = MODELS.build(copy.deepcopy(cfg.model))
        model.init_weights()
    finally:
        logger.setLevel(level)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu')
    return revert_sync_batchnorm(model).eval()
