"""An image classification dataset: an ImageNet-style folder tree or an annotation file.

The layouts ImageNet-1k (Deng et al., CVPR 2009) and iNaturalist-2017 (Van Horn et al., CVPR
2018, https://arxiv.org/abs/1707.06642) are distributed in:

- a folder per class: ``<data_prefix>/<class name>/<image>`` (classes sorted by name);
- a text list, one ``<relative path> <label>`` per line (mmpretrain's ``meta/train.txt``);
- a COCO-style JSON with ``images`` (``id``, ``file_name``), ``annotations`` (``image_id``,
  ``category_id``) and ``categories`` (``id``, ``name``): iNaturalist-2017's
  ``train2017.json`` / ``val2017.json`` as published. Labels are the category ids' ranks.
"""
import json
import os
import os.path as osp
from typing import List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset

from mmdet.registry import DATASETS
from mmdet_spine.errors import BadDataError

#: File endings read as images when a folder tree is scanned.
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')


def scan_class_folders(root: str, classes: Optional[Sequence[str]] = None,
                       extensions: Sequence[str] = IMG_EXTENSIONS):
    """``(classes, [(relative path, label), ...])`` of a folder-per-class tree.

    Labels follow ``classes`` when given (each must have its folder), else the sorted
    folder names.
    """
    if not osp.isdir(root):
        raise BadDataError(f'image folder {root} does not exist (expected one sub-folder of '
                           'images per class)')
    folders = sorted(e.name for e in os.scandir(root) if e.is_dir())
    if not folders:
        raise BadDataError(f'image folder {root} has no class sub-folders')
    if classes is None:
        classes = folders
    else:
        missing = [c for c in classes if c not in folders]
        if missing:
            raise BadDataError(f'image folder {root} has no sub-folder for the classes '
                               f'{missing[:5]}{" ..." if len(missing) > 5 else ""}')
        classes = list(classes)
    samples = []
    for label, name in enumerate(classes):
        for dirpath, _, files in sorted(os.walk(osp.join(root, name), followlinks=True)):
            for f in sorted(files):
                if f.lower().endswith(tuple(extensions)):
                    samples.append((osp.relpath(osp.join(dirpath, f), root), label))
    if not samples:
        raise BadDataError(f'image folder {root} has no images ({", ".join(extensions)})')
    return classes, samples


def read_annotation_list(path: str):
    """``[(relative path, label), ...]`` of a ``<path> <label>`` text file."""
    samples = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            name, _, label = line.rpartition(' ')
            try:
                samples.append((name, int(label)))
            except ValueError:
                raise BadDataError(f'{path}:{n}: expected "<image path> <integer label>", got '
                                   f'{line!r}') from None
            if not name or samples[-1][1] < 0:
                raise BadDataError(f'{path}:{n}: expected "<image path> <label >= 0>", got '
                                   f'{line!r}')
    return samples


def read_coco_style_json(path: str):
    """``(classes, [(file name, label), ...])`` of an iNaturalist / COCO-style JSON."""
    try:
        with open(path) as f:
            data = json.load(f)
        categories = sorted(data['categories'], key=lambda c: c['id'])
        rank = {c['id']: i for i, c in enumerate(categories)}
        files = {im['id']: im['file_name'] for im in data['images']}
        samples = [(files[a['image_id']], rank[a['category_id']]) for a in data['annotations']]
    except (ValueError, KeyError, TypeError) as e:
        raise BadDataError(f'{path} is not an iNaturalist/COCO-style classification file '
                           f'(images, annotations, categories): {type(e).__name__}: {e}') from None
    return [str(c.get('name', c['id'])) for c in categories], samples


@DATASETS.register_module()
class ImageClassificationDataset(BaseDataset):
    """Images with one class label each (ImageNet-style folders, a list file or a JSON).

    Each item is ``dict(img_path=..., gt_label=...)`` before the pipeline. Class names come
    from ``metainfo['classes']`` when given, else from the folder names or the JSON's
    categories (a list file without ``classes`` gets ``'0'``, ``'1'``, ...).

    Args:
        data_root (str): Prefix of ``ann_file`` and ``data_prefix``. Default: ''.
        data_prefix (str | dict): Folder of the images (``dict(img_path=...)`` also works).
            Without ``ann_file`` it is scanned as one sub-folder per class. Default: ''.
        ann_file (str): ``.txt`` list of ``<path> <label>`` or iNaturalist/COCO-style
            ``.json``; '' scans ``data_prefix``. Default: ''.
        classes (Sequence[str], optional): Class names (sets ``metainfo['classes']``).
        **kwargs: As mmengine's ``BaseDataset`` (``pipeline``, ``test_mode``, ``indices``,
            ``metainfo``, ``lazy_init``...).
    """

    METAINFO = dict(classes=None)

    def __init__(self, data_root: str = '', data_prefix: Union[str, dict] = '',
                 ann_file: str = '', classes: Optional[Sequence[str]] = None, **kwargs):
        if isinstance(data_prefix, str):
            data_prefix = dict(img_path=data_prefix)
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        if classes is not None:
            metainfo['classes'] = tuple(classes)
        super().__init__(ann_file=ann_file, metainfo=metainfo, data_root=data_root,
                         data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        root = self.data_prefix.get('img_path', '') or self.data_root
        classes = None
        given = self._metainfo.get('classes')
        if not self.ann_file:
            classes, samples = scan_class_folders(root, given)
        elif not osp.isfile(self.ann_file):
            raise BadDataError(f'annotation file {self.ann_file} does not exist')
        elif self.ann_file.endswith('.json'):
            classes, samples = read_coco_style_json(self.ann_file)
        else:
            samples = read_annotation_list(self.ann_file)
        if not samples:
            raise BadDataError(f'{self.ann_file or root} lists no images')
        if given is not None:
            top = max(label for _, label in samples)
            if top >= len(given):
                raise BadDataError(f'{self.ann_file or root} has label {top} but classes names '
                                   f'{len(given)} classes')
        else:
            if classes is None:
                classes = [str(i) for i in range(max(label for _, label in samples) + 1)]
            self._metainfo['classes'] = tuple(classes)
        return [dict(img_path=osp.join(root, path), gt_label=int(label))
                for path, label in samples]

    def get_cat_ids(self, idx: int) -> List[int]:
        """The label of item ``idx`` as a list (mmengine's class-balanced sampling)."""
        return [int(self.get_data_info(idx)['gt_label'])]
