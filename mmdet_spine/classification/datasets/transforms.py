"""Classification data transforms: TF's ImageNet crops and packing into model inputs.

The crops of the SpineNet classification recipe (tensorflow/tpu
``models/official/detection/dataloader/classification_parser.py`` and
``utils/input_utils.py``), themselves the Inception / ResNet protocol (Szegedy et al., CVPR
2015, https://arxiv.org/abs/1409.4842; He et al., CVPR 2016):

- training: a random crop covering 8-100 % of the image with aspect ratio 3/4-4/3 (10
  attempts; if none fits, the central crop below), resized to the output size, bilinear;
- evaluation: the central square of 0.875 of the short side (224 / 256), resized likewise.

Both sample with ``numpy.random`` as mmcv's transforms do, so mmengine's per-worker seeding
applies.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from mmdet.registry import TRANSFORMS
from mmdet_spine.errors import ConfigError


def _size_pair(size, owner: str) -> Tuple[int, int]:
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                 for v in pair):
        raise ConfigError(f'{owner}: size={size!r} must be an integer >= 1 or (height, width)')
    return pair


def _check_fraction(owner: str, field: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f'{owner}: {field}={value!r} must be in (0, 1]')


def center_crop_box(height: int, width: int, crop_fraction: float) -> Tuple[int, int, int, int]:
    """``(y, x, h, w)`` of the central square of ``crop_fraction`` x the short side."""
    side = max(1, int(crop_fraction * min(height, width)))
    return int((height - side) / 2), int((width - side) / 2), side, side


def _resize(img: np.ndarray, size: Tuple[int, int], interpolation: str) -> np.ndarray:
    return mmcv.imresize(img, (size[1], size[0]), interpolation=interpolation)


def _crop_and_resize(results: dict, box, size, interpolation: str) -> dict:
    """Crop ``results['img']`` to ``box`` (y, x, h, w), resize to ``size``, update the shape."""
    y, x, h, w = box
    img = _resize(results['img'][y:y + h, x:x + w], size, interpolation)
    results['img'] = img
    results['img_shape'] = img.shape[:2]
    return results


@TRANSFORMS.register_module()
class InceptionCrop(BaseTransform):
    """Random area / aspect-ratio crop resized to ``size`` (the Inception training crop).

    Samples the crop's area uniformly in ``scale`` x the image area and its aspect ratio
    (width / height) uniformly in ``ratio``, as TF's ``sample_distorted_bounding_box``;
    after ``max_attempts`` misses it takes the central crop of :class:`CenterCropResize`.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``.

    Args:
        size (int | tuple[int, int]): Output (height, width). Default: 224.
        scale (tuple[float, float]): Area fraction range, within (0, 1]. Default: (0.08, 1.0).
        ratio (tuple[float, float]): Aspect ratio range. Default: (3/4, 4/3).
        max_attempts (int): Samples tried before falling back. Default: 10.
        crop_fraction (float): The fallback central crop's fraction. Default: 0.875.
        interpolation (str): mmcv interpolation of the resize. Default: 'bilinear'.
    """

    def __init__(self, size: Union[int, Sequence[int]] = 224,
                 scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3. / 4., 4. / 3.), max_attempts: int = 10,
                 crop_fraction: float = 0.875, interpolation: str = 'bilinear'):
        owner = 'InceptionCrop'
        self.size = _size_pair(size, owner)
        if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
            raise ConfigError(f'{owner}: scale={tuple(scale)!r} must be (low, high) with '
                              '0 < low <= high <= 1')
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise ConfigError(f'{owner}: ratio={tuple(ratio)!r} must be (low, high) with '
                              '0 < low <= high')
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) \
                or max_attempts < 1:
            raise ConfigError(f'{owner}: max_attempts={max_attempts!r} must be an integer >= 1')
        _check_fraction(owner, 'crop_fraction', crop_fraction)
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.max_attempts = max_attempts
        self.crop_fraction = crop_fraction
        self.interpolation = interpolation

    def crop_box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """A sampled ``(y, x, h, w)``; the central crop when no sample fits."""
        area = height * width
        for _ in range(self.max_attempts):
            target = np.random.uniform(*self.scale) * area
            aspect = np.random.uniform(*self.ratio)
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return (int(np.random.randint(0, height - h + 1)),
                        int(np.random.randint(0, width - w + 1)), h, w)
        return center_crop_box(height, width, self.crop_fraction)

    def transform(self, results: dict) -> dict:
        return _crop_and_resize(results, self.crop_box(*results['img'].shape[:2]), self.size,
                                self.interpolation)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, scale={self.scale}, '
                f'ratio={self.ratio}, max_attempts={self.max_attempts})')


@TRANSFORMS.register_module()
class CenterCropResize(BaseTransform):
    """Central square of ``crop_fraction`` x the short side, resized to ``size``.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``.

    Args:
        size (int | tuple[int, int]): Output (height, width). Default: 224.
        crop_fraction (float): In (0, 1]; 0.875 = 224 / 256. Default: 0.875.
        interpolation (str): mmcv interpolation of the resize. Default: 'bilinear'.
    """

    def __init__(self, size: Union[int, Sequence[int]] = 224, crop_fraction: float = 0.875,
                 interpolation: str = 'bilinear'):
        self.size = _size_pair(size, 'CenterCropResize')
        _check_fraction('CenterCropResize', 'crop_fraction', crop_fraction)
        self.crop_fraction = crop_fraction
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        box = center_crop_box(*results['img'].shape[:2], self.crop_fraction)
        return _crop_and_resize(results, box, self.size, self.interpolation)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'crop_fraction={self.crop_fraction})')


@TRANSFORMS.register_module()
class PackClassificationInputs(BaseTransform):
    """Pack an image and its label: ``inputs`` (``uint8`` CHW tensor) and ``data_samples``.

    The data sample is an mmengine ``BaseDataElement`` whose metainfo holds ``meta_keys``
    and whose ``gt_label`` is a ``(1,)`` long tensor (the layout of mmpretrain's
    ``DataSample``).

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo when present.
            Default: ('img_path', 'ori_shape', 'img_shape').
    """

    def __init__(self, meta_keys: Sequence[str] = ('img_path', 'ori_shape', 'img_shape')):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = BaseDataElement(metainfo={k: results[k] for k in self.meta_keys
                                           if k in results})
        label: Optional[int] = results.get('gt_label')
        if label is not None:
            sample.gt_label = torch.as_tensor(label, dtype=torch.long).reshape(1)
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
