import hashlib
import json
import os
import os.path as osp

import numpy as np
import pytest
from pycocotools.coco import COCO

from mmdet_spine.datasets import ShapesDataset, generate_shapes_dataset

SPEC = dict(num_train=6, num_val=3, img_size=96, max_objects=4, min_size=16, max_size=40)


def _digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            h.update(f.encode())
            with open(osp.join(dirpath, f), 'rb') as fh:
                h.update(fh.read())
    return h.hexdigest()


def test_generation_is_deterministic(tmp_path):
    a = generate_shapes_dataset(str(tmp_path / 'a'), seed=3, **SPEC)
    b = generate_shapes_dataset(str(tmp_path / 'b'), seed=3, **SPEC)
    c = generate_shapes_dataset(str(tmp_path / 'c'), seed=4, **SPEC)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_coco_valid_with_boxes_and_masks(tmp_path):
    root = generate_shapes_dataset(str(tmp_path / 's'), seed=0, **SPEC)
    for split, n in (('train', 6), ('val', 3)):
        coco = COCO(osp.join(root, 'annotations', f'instances_{split}.json'))
        assert len(coco.getImgIds()) == n
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == \
            ['square', 'circle', 'triangle']
        anns = coco.loadAnns(coco.getAnnIds())
        assert len(anns) >= n  # at least one object per image
        assert len({a['id'] for a in anns}) == len(anns)
        for ann in anns:
            x, y, w, h = ann['bbox']
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 96 and y + h <= 96
            mask = coco.annToMask(ann)  # polygons decode with pycocotools
            assert mask.shape == (96, 96)
            ys, xs = np.nonzero(mask)
            # the polygon covers the visible pixels and agrees with the box within 2 px
            assert abs(xs.min() - x) <= 2 and abs(ys.min() - y) <= 2
            assert abs(mask.sum() - ann['area']) <= 0.25 * ann['area'] + 8
        for img in coco.loadImgs(coco.getImgIds()):
            assert osp.isfile(osp.join(root, split, img['file_name']))


def test_dataset_generates_on_first_use_and_loads(tmp_path):
    root = str(tmp_path / 'auto') + '/'
    ds = ShapesDataset(data_root=root, ann_file='annotations/instances_train.json',
                       data_prefix=dict(img='train/'), generate_cfg=SPEC, pipeline=[])
    assert len(ds) == 6
    info = ds.get_data_info(0)
    assert osp.isfile(info['img_path']) and len(info['instances']) >= 1
    assert ds.metainfo['classes'] == ('square', 'circle', 'triangle')
    with open(osp.join(root, 'annotations', 'instances_val.json')) as f:
        assert json.load(f)['info']['spec']['num_val'] == 3


def test_missing_dataset_says_how_to_generate(tmp_path):
    with pytest.raises(FileNotFoundError, match='generate_shapes.py'):
        ShapesDataset(data_root=str(tmp_path / 'none') + '/', auto_generate=False,
                      ann_file='annotations/instances_train.json',
                      data_prefix=dict(img='train/'), pipeline=[])


def test_bad_spec_is_rejected(tmp_path):
    with pytest.raises(ValueError, match='max_size'):
        generate_shapes_dataset(str(tmp_path / 'x'), img_size=64, max_size=48)
