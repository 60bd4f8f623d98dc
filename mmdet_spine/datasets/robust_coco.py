"""COCO-format datasets that say what is wrong with the data instead of crashing or hiding it.

mmdet's ``CocoDataset`` silently drops boxes with zero/negative area or outside the image and
annotations whose ``category_id`` the file does not declare, and stops the whole run (deep
inside a dataloader worker) on one missing or corrupt image. :class:`RobustCocoMixin` instead:

* stops with one clear error for a missing, empty or malformed annotation file, or one that
  leaves no usable image (for training: one whose images carry no annotations at all while
  ``filter_cfg.filter_empty_gt`` drops such images, as mmdet's training configs do; testing
  on unannotated images, and training on background images with ``filter_empty_gt=False``,
  work as in mmdet, the latter with a warning);
* skips, with one counted warning that names each file and annotation, every image with an
  annotation that has an unknown ``category_id``, a malformed/non-finite box, a box with zero or
  negative width/height, or a box entirely outside the image (boxes partly outside are clipped
  to the image and counted);
* while training, skips a missing or undecodable image file with a counted warning (another
  sample is drawn, as mmengine does for pipelines returning ``None``); in test mode, where
  skipping would bias the evaluation, it stops with an error naming the file.

``bad_sample='error'`` turns every skip into an error.
"""
import json
import logging
import math
import os.path as osp
from typing import List, Optional

from mmengine.fileio import get, get_local_path
from mmengine.logging import print_log
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from ..errors import BadDataError

__all__ = ['BadDataError', 'MissingDataError', 'RobustCocoMixin', 'RobustCocoDataset']

BAD_SAMPLE_POLICIES = ('skip', 'error')


class MissingDataError(BadDataError, FileNotFoundError):
    """A data file the dataset needs does not exist (also a ``FileNotFoundError``)."""


def _image_problem(path: str, backend_args: Optional[dict]) -> Optional[str]:
    """Why the image at ``path`` cannot be read, or None when it decodes fine."""
    import mmcv
    try:
        data = get(path, backend_args=backend_args)
    except FileNotFoundError:
        return 'image file not found'
    except OSError as e:
        return f'image file unreadable ({e.strerror or e})'
    if not data:
        return 'image file is empty (0 bytes)'
    try:
        img = mmcv.imfrombytes(data, flag='color')
    except Exception:  # noqa: BLE001  (decoder errors vary by backend)
        img = None
    if img is None or img.size == 0:
        return f'image file is corrupt or not an image ({len(data)} bytes)'
    return None


class RobustCocoMixin:
    """Validation and bad-sample handling for :class:`mmdet.datasets.CocoDataset` subclasses.

    Put it first in the bases (``class MyDataset(RobustCocoMixin, CocoDataset)``).

    Args:
        bad_sample (str): ``'skip'`` (default): skip images with bad annotations or unreadable
            files, with a counted warning. ``'error'``: stop at the first one.
    """

    def __init__(self, *args, bad_sample: str = 'skip', **kwargs):
        if bad_sample not in BAD_SAMPLE_POLICIES:
            raise BadDataError(f'{type(self).__name__}: bad_sample={bad_sample!r} is not one of '
                               f'{BAD_SAMPLE_POLICIES}')
        self.bad_sample = bad_sample
        self.skipped_images = {}  # img_path -> reason (annotation problems and unreadable files)
        self.clipped_boxes = 0
        super().__init__(*args, **kwargs)

    # -- annotation file ------------------------------------------------------------------
    def _check_ann_file(self) -> None:
        name = type(self).__name__
        try:
            with get_local_path(self.ann_file, backend_args=self.backend_args) as local:
                if osp.getsize(local) == 0:
                    raise BadDataError(f'{name}: annotation file {self.ann_file} is empty '
                                       '(0 bytes)')
                with open(local) as f:
                    content = json.load(f)
        except FileNotFoundError:
            raise MissingDataError(f'{name}: annotation file not found: {self.ann_file} '
                               f'(data_root={self.data_root!r})') from None
        except json.JSONDecodeError as e:
            raise BadDataError(f'{name}: annotation file {self.ann_file} is not valid JSON '
                               f'({e})') from None
        if not isinstance(content, dict) or not content.get('images'):
            raise BadDataError(f'{name}: annotation file {self.ann_file} lists no images '
                               "(an empty or non-COCO file: expected 'images', 'annotations' "
                               "and 'categories')")
        if not content.get('categories'):
            raise BadDataError(f'{name}: annotation file {self.ann_file} declares no '
                               "'categories'")

    def load_data_list(self) -> List[dict]:
        self._check_ann_file()
        self.skipped_images, self.clipped_boxes = {}, 0
        data_list = [d for d in super().load_data_list() if not d.get('_bad')]
        if self.skipped_images or self.clipped_boxes:
            total = len(data_list) + len(self.skipped_images)
            lines = [f'{p}: {r}' for p, r in list(self.skipped_images.items())[:10]]
            more = len(self.skipped_images) - len(lines)
            print_log(
                f'{type(self).__name__} ({self.ann_file}): skipped {len(self.skipped_images)} of '
                f'{total} images with bad annotations'
                + (f', clipped {self.clipped_boxes} boxes to their image' if
                   self.clipped_boxes else '') + (':\n  ' + '\n  '.join(lines) if lines else '')
                + (f'\n  ... and {more} more' if more > 0 else ''),
                logger='current', level=logging.WARNING)
        if not data_list:
            raise BadDataError(f'{type(self).__name__}: no usable image in {self.ann_file} '
                               f'({len(self.skipped_images)} skipped for bad annotations)')
        return data_list

    def filter_data(self) -> List[dict]:
        """mmdet's filtering (``filter_cfg``), with one clear error when it leaves nothing.

        An annotation file whose images have no annotations at all is valid for testing
        (e.g. COCO test-dev) and, with ``filter_cfg.filter_empty_gt=False``, trains on
        background images (with a warning); with ``filter_empty_gt=True`` (mmdet's training
        default) every image would be dropped, which is a :class:`BadDataError` naming the file.
        """
        kept = super().filter_data()
        if self.test_mode or not self.data_list:
            return kept
        annotated = sum(1 for d in self.data_list if d.get('instances'))
        name = type(self).__name__
        if not kept:
            cfg = self.filter_cfg or {}
            why = (f'none of its {len(self.data_list)} images has an annotation'
                   if annotated == 0 else
                   f'filter_cfg={dict(cfg)} removed all {len(self.data_list)} images')
            hint = ("; add annotations, or set train_dataloader.dataset.filter_cfg."
                    "filter_empty_gt=False to train on background images only"
                    if annotated == 0 and cfg.get('filter_empty_gt') else '')
            raise BadDataError(f'{name}: no training image left in {self.ann_file}: {why}{hint}')
        if annotated == 0:
            print_log(f'{name}: {self.ann_file} has no annotations: training on '
                      f'{len(kept)} background images only', logger='current',
                      level=logging.WARNING)
        return kept

    # -- annotations ----------------------------------------------------------------------
    def _annotation_problem(self, ann: dict, width: float, height: float) -> Optional[str]:
        known = self.coco.cats
        if ann.get('category_id') not in known:
            return (f"annotation {ann.get('id')}: unknown category_id "
                    f"{ann.get('category_id')!r} (the file declares {sorted(known)})")
        box = ann.get('bbox')
        if (not isinstance(box, (list, tuple)) or len(box) != 4
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box)):
            return f"annotation {ann.get('id')}: bbox {box!r} is not 4 finite numbers [x, y, w, h]"
        x, y, w, h = box
        if w <= 0 or h <= 0:
            return (f"annotation {ann.get('id')}: bbox {list(box)} has zero or negative area "
                    f'(w={w}, h={h})')
        if x >= width or y >= height or x + w <= 0 or y + h <= 0:
            return (f"annotation {ann.get('id')}: bbox {list(box)} lies outside the "
                    f'{width}x{height} image')
        return None

    def parse_data_info(self, raw_data_info: dict):
        img = raw_data_info['raw_img_info']
        path = osp.join(self.data_prefix.get('img', ''), img.get('file_name', '?'))
        problems = []
        for ann in raw_data_info['raw_ann_info']:
            if ann.get('ignore', False):
                continue
            problem = self._annotation_problem(ann, img['width'], img['height'])
            if problem:
                problems.append(problem)
                continue
            x, y, w, h = ann['bbox']
            x0, y0 = max(x, 0), max(y, 0)
            x1, y1 = min(x + w, img['width']), min(y + h, img['height'])
            if (x0, y0, x1, y1) != (x, y, x + w, y + h):
                ann['bbox'] = [x0, y0, x1 - x0, y1 - y0]
                self.clipped_boxes += 1
        if problems:
            reason = f"image {img.get('img_id')} ({img.get('file_name')}): " + '; '.join(problems)
            if self.bad_sample == 'error':
                raise BadDataError(f'{type(self).__name__} ({self.ann_file}): {reason}')
            self.skipped_images[path] = '; '.join(problems)
            return dict(_bad=True)
        return super().parse_data_info(raw_data_info)

    # -- image files ----------------------------------------------------------------------
    def prepare_data(self, idx):
        try:
            return super().prepare_data(idx)
        except Exception as e:  # noqa: BLE001  (re-raised unless the image is the cause)
            path = self.get_data_info(idx).get('img_path')
            problem = _image_problem(path, self.backend_args) if path else None
            if problem is None:
                raise
            msg = f'{type(self).__name__}: {path}: {problem}'
            if self.test_mode or self.bad_sample == 'error':
                raise BadDataError(msg + (' (test mode: every image must be readable)'
                                          if self.test_mode else '')) from None
            if path not in self.skipped_images:
                self.skipped_images[path] = problem
                print_log(f'{msg}; skipped ({len(self.skipped_images)} images skipped so far '
                          'in this process)', logger='current', level=logging.WARNING)
            return None  # mmengine draws another sample


@DATASETS.register_module()
class RobustCocoDataset(RobustCocoMixin, CocoDataset):
    """``CocoDataset`` with clear errors and counted skips for bad data.

    See :class:`RobustCocoMixin`; takes ``bad_sample`` and every ``CocoDataset`` argument.
    """

