"""Datasets of mmdet-spine; importing registers them into ``mmdet.registry.DATASETS``."""
from .shapes import ShapesDataset, ensure_shapes_dataset, generate_shapes_dataset

__all__ = ['ShapesDataset', 'ensure_shapes_dataset', 'generate_shapes_dataset']
