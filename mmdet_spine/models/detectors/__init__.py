"""Registered detectors of mmdet-spine and the EfficientDet scaling table."""
from .efficientdet import EfficientDet
from .efficientdet_scaling import EFFICIENTDET_SCALING, efficientdet_model_cfg

__all__ = ['EfficientDet', 'EFFICIENTDET_SCALING', 'efficientdet_model_cfg']
