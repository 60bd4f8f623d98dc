"""A generated image classification dataset: one shape per image, six classes.

The embedded default of the classification job (no download): each image shows one filled
*circle*, *square*, *triangle*, *star*, *cross* or *ring* of random size, position,
rotation and (bright) colour on a dark, noisy gradient background. Generation is deterministic for a given
seed and settings. It is written as an ImageNet-style folder tree, so that any
folder-reading classifier (ours, mmpretrain's ``CustomDataset``) can read it::

    data/shapes_cls/
        meta.json                      the generator settings (written last)
        train/<class>/000000.png ...
        val/<class>/000000.png ...
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional

import numpy as np

from mmdet.registry import DATASETS
from mmdet_spine.errors import BadDataError, ConfigError

from ...datasets.shapes import file_lock
from .image_classification_dataset import ImageClassificationDataset

SHAPE_CLASSES = ('circle', 'square', 'triangle', 'star', 'cross', 'ring')

#: Defaults of :func:`generate_shapes_classification`; a dataset config can override them.
DEFAULT_SPEC = dict(num_train_per_class=200, num_val_per_class=50, img_size=32, seed=0)

_META = 'meta.json'


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Vertices of a polygonal shape of circumradius ``r``."""
    if kind == 'square':
        radii, n = [r], 4
    elif kind == 'triangle':
        radii, n = [r], 3
    elif kind == 'star':
        radii, n = [r, 0.42 * r], 10
    else:  # cross: a plus sign whose arms are 0.36 r wide
        w = 0.36 * r
        pts = np.array([(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r), (-w, -r),
                        (-w, -w), (-r, -w), (-r, w), (-w, w), (-w, r)], np.float64)
        c, s = np.cos(angle), np.sin(angle)
        return pts @ np.array([[c, s], [-s, c]]) + (cx, cy)
    theta = angle + 2 * np.pi * np.arange(n) / n
    rad = np.resize(np.array(radii), n)
    return np.stack([cx + rad * np.cos(theta), cy + rad * np.sin(theta)], 1)


def render_shape(rng: np.random.Generator, kind: str, img_size: int) -> np.ndarray:
    """One BGR ``uint8`` image of ``kind`` (deterministic for the state of ``rng``)."""
    import cv2
    s = img_size
    # a dark background with a colour gradient and noise, a bright shape of any colour (as
    # mmdet_spine.datasets.shapes does for detection)
    bg = rng.integers(0, 90, 3).astype(np.float32)
    ramp = np.linspace(-1, 1, s, dtype=np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    grad = (np.cos(direction) * ramp[None, :] + np.sin(direction) * ramp[:, None])
    img = bg + grad[..., None] * rng.uniform(0, 30, 3).astype(np.float32)
    img = np.clip(img + rng.normal(0, 4, (s, s, 3)), 0, 255).astype(np.uint8)
    colour = rng.integers(110, 256, 3)
    r = rng.uniform(0.25, 0.45) * s
    cx, cy = rng.uniform(r + 1, s - r - 1, 2)
    angle = rng.uniform(0, 2 * np.pi)
    colour = tuple(int(c) for c in colour)
    center = (int(round(cx * 16)), int(round(cy * 16)))  # 4 fractional bits
    if kind == 'circle':
        cv2.circle(img, center, int(round(r * 16)), colour, -1, cv2.LINE_AA, 4)
    elif kind == 'ring':
        thickness = max(2, int(round(0.3 * r)))
        cv2.circle(img, center, int(round((r - thickness / 2) * 16)), colour, thickness,
                   cv2.LINE_AA, 4)
    else:
        pts = np.round(_polygon(kind, cx, cy, r, angle) * 16).astype(np.int32)
        cv2.fillPoly(img, [pts], colour, cv2.LINE_AA, 4)
    return img


def generate_shapes_classification(root: str, num_train_per_class: int = 200,
                                   num_val_per_class: int = 50, img_size: int = 32,
                                   seed: int = 0) -> str:
    """Write the dataset under ``root`` (atomically: a temp dir renamed at the end).

    Args:
        root (str): Target directory; must not exist yet.
        num_train_per_class (int): Training images per class. Default: 200.
        num_val_per_class (int): Validation images per class. Default: 50.
        img_size (int): Square image side in pixels, >= 16. Default: 32.
        seed (int): Seed; every (split, class) uses its own stream of it. Default: 0.

    Returns:
        str: ``root``.
    """
    import cv2
    spec = dict(num_train_per_class=num_train_per_class, num_val_per_class=num_val_per_class,
                img_size=img_size, seed=seed)
    for field, low in (('num_train_per_class', 1), ('num_val_per_class', 1), ('img_size', 16)):
        value = spec[field]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f'generate_cfg.{field}={value!r} must be an integer >= {low}')
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.shapes_cls-', dir=parent)
    try:
        for split_id, (split, count) in enumerate((('train', num_train_per_class),
                                                   ('val', num_val_per_class))):
            for label, kind in enumerate(SHAPE_CLASSES):
                rng = np.random.default_rng([seed, split_id, label])
                folder = osp.join(tmp, split, kind)
                os.makedirs(folder)
                for i in range(count):
                    cv2.imwrite(osp.join(folder, f'{i:06d}.png'),
                                render_shape(rng, kind, img_size))
        with open(osp.join(tmp, _META), 'w') as f:
            json.dump(dict(description='mmdet-spine shapes classification',
                           classes=SHAPE_CLASSES, spec=spec), f)
        os.rename(tmp, root)
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def ensure_shapes_classification(root: str, **spec) -> Dict:
    """Generate the dataset under ``root`` unless it is there (safe across processes);
    return its settings. A dataset generated with other settings is an error."""
    want = dict(DEFAULT_SPEC, **spec)
    marker = osp.join(root, _META)
    if not osp.isfile(marker):
        with file_lock(osp.abspath(root).rstrip('/') + '.lock'):
            if not osp.isfile(marker):
                if osp.isdir(root):
                    raise BadDataError(f'{root} exists but is not a generated shapes '
                                       f'classification dataset (no {_META}); remove it or '
                                       'choose another data_root')
                print(f'Generating the shapes classification dataset under {root} ({want}) '
                      '...', flush=True)
                generate_shapes_classification(root, **want)
    with open(marker) as f:
        have = json.load(f)['spec']
    if have != want:
        raise BadDataError(f'{root} was generated with {have}, not the requested {want}; '
                           'remove it or choose another data_root')
    return have


@DATASETS.register_module()
class ShapesClassificationDataset(ImageClassificationDataset):
    """The generated six-class shapes dataset, generated under ``data_root`` on first use.

    Args:
        data_root (str): Where the dataset lives. Default: 'data/shapes_cls/'.
        split (str): 'train' or 'val'. Default: 'train'.
        generate_cfg (dict, optional): Settings of :func:`generate_shapes_classification`
            (num_train_per_class, num_val_per_class, img_size, seed). Default: None.
        auto_generate (bool): Generate the data when missing; with False a missing dataset
            is a :class:`BadDataError`. Default: True.
        **kwargs: As :class:`ImageClassificationDataset` (``pipeline``, ``test_mode``...).
    """

    METAINFO = dict(classes=SHAPE_CLASSES)

    def __init__(self, data_root: str = 'data/shapes_cls/', split: str = 'train',
                 generate_cfg: Optional[dict] = None, auto_generate: bool = True, **kwargs):
        if split not in ('train', 'val'):
            raise ConfigError(f"ShapesClassificationDataset: split={split!r} is not a split; "
                              'valid choices: train, val')
        self.split = split
        self.generate_cfg = dict(generate_cfg or {})
        unknown = sorted(set(self.generate_cfg) - set(DEFAULT_SPEC))
        if unknown:
            raise ConfigError(f'ShapesClassificationDataset: generate_cfg has unknown keys '
                              f"{unknown}; valid keys: {', '.join(DEFAULT_SPEC)}")
        self.auto_generate = auto_generate
        super().__init__(data_root=data_root, data_prefix=split, **kwargs)

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(osp.join(self.data_root, _META)) and not self.auto_generate:
            raise BadDataError(f'the shapes classification dataset is not under '
                               f'{self.data_root}; set auto_generate=True to generate it')
        ensure_shapes_classification(self.data_root, **self.generate_cfg)
        return super().load_data_list()
