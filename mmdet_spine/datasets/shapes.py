"""A generated, COCO-format *shapes* dataset: squares, circles and triangles.

Small enough to train a detector on a CPU in minutes, with boxes and polygon masks of the
*visible* part of every object (objects may overlap; each keeps most of its area visible).
Generation is deterministic for a given seed and settings: the same call writes the same
bytes. The files go under ``data/shapes/`` by default (git-ignored)::

    data/shapes/
        annotations/instances_train.json, instances_val.json
        train/000000.png ...
        val/000000.png ...
"""
import contextlib
import fcntl
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional

import cv2
import numpy as np
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from .robust_coco import MissingDataError, RobustCocoMixin

CLASSES = ('square', 'circle', 'triangle')
PALETTE = [(220, 20, 60), (0, 128, 255), (60, 200, 60)]

#: Defaults of :func:`generate_shapes_dataset`; a dataset config can override any of them.
DEFAULT_SPEC = dict(num_train=1000, num_val=200, img_size=256, min_objects=1, max_objects=4,
                    min_size=24, max_size=96, seed=0)

GENERATE_HINT = ('generate it with `python tools/misc/generate_shapes.py --out {root}` '
                 '(or set auto_generate=True on ShapesDataset, the default)')


def _shape_mask(kind: str, cx: float, cy: float, size: float, angle: float,
                img_size: int) -> np.ndarray:
    """Binary mask of one shape of the given kind."""
    mask = np.zeros((img_size, img_size), np.uint8)
    if kind == 'circle':
        cv2.circle(mask, (int(round(cx)), int(round(cy))), int(round(size / 2)), 1, -1, cv2.LINE_8)
        return mask
    n = 4 if kind == 'square' else 3
    radius = size / 2 * (np.sqrt(2) if kind == 'square' else 2 / np.sqrt(3))
    start = np.pi / 4 if kind == 'square' else angle  # squares stay axis-aligned
    theta = start + 2 * np.pi * np.arange(n) / n
    pts = np.stack([cx + radius * np.cos(theta), cy + radius * np.sin(theta)], 1)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1, cv2.LINE_8)
    return mask


def _mask_to_polygons(mask: np.ndarray) -> List[List[float]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        if len(c) >= 3 and cv2.contourArea(c) >= 4:
            polys.append([float(v) for v in c.reshape(-1)])
    return polys


def _render_image(rng: np.random.Generator, spec: Dict) -> tuple:
    """One image and its visible-object annotations (dicts without ids)."""
    s = spec['img_size']
    bg = rng.integers(0, 90, 3)
    ramp = np.linspace(0, 1, s, dtype=np.float32)[None, :, None] * rng.integers(0, 40, 3)
    img = np.clip(bg[None, None, :] + ramp + rng.normal(0, 4, (s, s, 3)), 0, 255)
    img = img.astype(np.uint8)
    labels = np.zeros((s, s), np.int32)  # 0 = background, k = k-th object
    objects = []
    target = int(rng.integers(spec['min_objects'], spec['max_objects'] + 1))
    for _ in range(target * 20):
        if len(objects) == target:
            break
        kind = CLASSES[int(rng.integers(0, len(CLASSES)))]
        size = float(rng.uniform(spec['min_size'], spec['max_size']))
        half = size / 2 * 1.2
        cx, cy = rng.uniform(half, s - half, 2)
        mask = _shape_mask(kind, cx, cy, size, float(rng.uniform(0, 2 * np.pi)), s)
        if mask.sum() < 64:
            continue
        # every earlier object must keep >= 60 % of its pixels visible
        ok = True
        for k, obj in enumerate(objects, 1):
            visible = labels == k
            if (visible & (mask > 0)).sum() > visible.sum() - 0.6 * obj['full_area']:
                ok = False
                break
        if not ok:
            continue
        labels[mask > 0] = len(objects) + 1
        colour = rng.integers(110, 256, 3)
        img[mask > 0] = colour.astype(np.uint8)
        objects.append(dict(kind=kind, full_area=float(mask.sum())))
    anns = []
    for k, obj in enumerate(objects, 1):
        visible = (labels == k).astype(np.uint8)
        polys = _mask_to_polygons(visible)
        if not polys:
            continue
        ys, xs = np.nonzero(visible)
        x0, y0 = float(xs.min()), float(ys.min())
        bbox = [x0, y0, float(xs.max()) + 1 - x0, float(ys.max()) + 1 - y0]
        anns.append(dict(category_id=CLASSES.index(obj['kind']) + 1, bbox=bbox,
                         area=float(visible.sum()), segmentation=polys, iscrowd=0))
    return img, anns


def generate_shapes_dataset(root: str, num_train: int = 1000, num_val: int = 200,
                            img_size: int = 256, min_objects: int = 1, max_objects: int = 4,
                            min_size: int = 24, max_size: int = 96, seed: int = 0) -> str:
    """Write the shapes dataset under ``root`` (atomically: a temp dir renamed at the end).

    Args:
        root (str): Target directory; must not exist yet.
        num_train (int): Training images. Default: 1000.
        num_val (int): Validation images. Default: 200.
        img_size (int): Square image side in pixels. Default: 256.
        min_objects (int): Fewest objects per image. Default: 1.
        max_objects (int): Most objects per image. Default: 4.
        min_size (int): Smallest shape diameter in pixels. Default: 24.
        max_size (int): Largest shape diameter in pixels. Default: 96.
        seed (int): Seed; train and val use independent streams of it. Default: 0.

    Returns:
        str: ``root``.
    """
    spec = dict(num_train=num_train, num_val=num_val, img_size=img_size,
                min_objects=min_objects, max_objects=max_objects, min_size=min_size,
                max_size=max_size, seed=seed)
    if not 0 < min_size <= max_size <= img_size // 2:
        raise ValueError(f'need 0 < min_size <= max_size <= img_size/2, got {spec}')
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f'need 1 <= min_objects <= max_objects, got {spec}')
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.shapes-', dir=parent)
    try:
        os.makedirs(osp.join(tmp, 'annotations'))
        categories = [dict(id=i + 1, name=n, supercategory='shape') for i, n in enumerate(CLASSES)]
        for split_id, (split, count) in enumerate((('train', num_train), ('val', num_val))):
            rng = np.random.default_rng([seed, split_id])
            os.makedirs(osp.join(tmp, split))
            images, annotations = [], []
            for i in range(count):
                img, anns = _render_image(rng, spec)
                name = f'{i:06d}.png'
                cv2.imwrite(osp.join(tmp, split, name), img)
                images.append(dict(id=i, file_name=name, height=img_size, width=img_size))
                for a in anns:
                    annotations.append(dict(a, id=len(annotations) + 1, image_id=i))
            with open(osp.join(tmp, 'annotations', f'instances_{split}.json'), 'w') as f:
                json.dump(dict(info=dict(description='mmdet-spine shapes', spec=spec),
                               images=images, annotations=annotations,
                               categories=categories), f)
        os.rename(tmp, root)
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return root


@contextlib.contextmanager
def file_lock(path: str):
    """Hold an exclusive ``flock`` on ``path`` (created if needed) while the block runs, so
    that distributed ranks / parallel jobs generate a dataset once."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_shapes_dataset(root: str, **spec) -> str:
    """Generate the dataset under ``root`` unless it is there; safe across processes."""
    marker = osp.join(root, 'annotations', 'instances_val.json')
    if osp.isfile(marker):
        return root
    with file_lock(osp.abspath(root).rstrip('/') + '.lock'):
        if not osp.isfile(marker):
            if osp.isdir(root):
                raise MissingDataError(f'{root} exists but holds no shapes annotations '
                                       f'({marker}); remove it, then ' + GENERATE_HINT.format(root=root))
            full = dict(DEFAULT_SPEC, **spec)
            print(f'Generating the shapes dataset under {root} ({full}) ...', flush=True)
            generate_shapes_dataset(root, **full)
    return root


@DATASETS.register_module()
class ShapesDataset(RobustCocoMixin, CocoDataset):
    """COCO-format shapes dataset (3 classes), generated on first use.

    Bad samples are handled by :class:`~mmdet_spine.datasets.RobustCocoMixin` (argument
    ``bad_sample``, default ``'skip'``).

    Args:
        auto_generate (bool): Generate the data under ``data_root`` when it is missing.
            Default: True. With False a missing dataset raises an error saying how to make it.
        generate_cfg (dict, optional): Settings for :func:`generate_shapes_dataset`
            (num_train, num_val, img_size, ...). Default: None (the defaults).
        **kwargs: As :class:`mmdet.datasets.CocoDataset`.
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, *args, auto_generate: bool = True,
                 generate_cfg: Optional[dict] = None, **kwargs):
        self.auto_generate = auto_generate
        self.generate_cfg = generate_cfg or {}
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            root = self.data_root or osp.dirname(osp.dirname(self.ann_file))
            if not self.auto_generate:
                raise MissingDataError(f'Shapes annotations {self.ann_file} not found: '
                                        + GENERATE_HINT.format(root=root))
            ensure_shapes_dataset(root, **self.generate_cfg)
            if not osp.isfile(self.ann_file):
                raise MissingDataError(f'{self.ann_file} is not part of the shapes dataset '
                                        f'generated under {root}')
        return super().load_data_list()
