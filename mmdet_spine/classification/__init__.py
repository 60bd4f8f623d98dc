"""SpineNet image classification (Du et al., CVPR 2020, https://arxiv.org/abs/1912.05027,
Sec. 4.3 and 6) on mmengine alone: :class:`SpineClassifier` (backbone ->
:class:`PyramidAveragePooling` -> :class:`LinearClassificationHead`), the datasets
(:class:`ImageClassificationDataset`, the generated :class:`ShapesClassificationDataset`),
TF's ImageNet crops and :class:`ClassificationAccuracy`. Importing registers them into mmdet's
registries, so configs with ``default_scope = 'mmdet'`` and ``custom_imports=['mmdet_spine']``
train with ``tools/train.py``.

mmpretrain users import :mod:`mmdet_spine.classification.mmpretrain_models` instead (not
imported here: it imports mmpretrain).
"""
from .datasets import (CenterCropResize, ImageClassificationDataset, InceptionCrop,
                       PackClassificationInputs, ShapesClassificationDataset,
                       generate_shapes_classification)
from .evaluation import ClassificationAccuracy
from .models import LinearClassificationHead, PyramidAveragePooling, SpineClassifier

__all__ = ['CenterCropResize', 'ImageClassificationDataset', 'InceptionCrop',
           'PackClassificationInputs', 'ShapesClassificationDataset',
           'generate_shapes_classification', 'ClassificationAccuracy',
           'LinearClassificationHead', 'PyramidAveragePooling', 'SpineClassifier']
