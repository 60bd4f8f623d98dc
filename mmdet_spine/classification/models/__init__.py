"""Classification models; importing registers them into ``mmdet.registry.MODELS``."""
from .linear_classification_head import LinearClassificationHead, topk_correct
from .pyramid_average_pooling import AGGREGATIONS, PyramidAveragePooling
from .spine_classifier import SpineClassifier, gt_labels

__all__ = ['LinearClassificationHead', 'PyramidAveragePooling', 'SpineClassifier',
           'AGGREGATIONS', 'gt_labels', 'topk_correct']
