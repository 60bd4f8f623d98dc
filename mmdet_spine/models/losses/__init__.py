"""Losses of mmdet-spine (registered into ``mmdet.registry.MODELS``)."""
from .fused_focal_loss import FusedFocalLoss

__all__ = ['FusedFocalLoss']
