"""Datasets of mmdet-spine; importing registers them into ``mmdet.registry.DATASETS``."""
from .robust_coco import BadDataError, MissingDataError, RobustCocoDataset, RobustCocoMixin
from .shapes import ShapesDataset, ensure_shapes_dataset, generate_shapes_dataset

__all__ = ['BadDataError', 'MissingDataError', 'RobustCocoDataset', 'RobustCocoMixin', 'ShapesDataset',
           'ensure_shapes_dataset', 'generate_shapes_dataset']
