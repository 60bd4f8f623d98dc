"""Bad data: each case gives a message naming the file/annotation; samples are skipped with a
counted warning, a missing/empty annotation file stops the run."""
import copy
import json
import os
import re

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

import mmdet_spine  # noqa: F401
from mmdet_spine.datasets import BadDataError, MissingDataError, RobustCocoDataset

from helpers import TINY_CONFIG, run_tool

CATEGORIES = [dict(id=1, name='square'), dict(id=2, name='circle'), dict(id=3, name='triangle')]
META = dict(classes=('square', 'circle', 'triangle'))
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs')]


@pytest.fixture(autouse=True)
def _mmdet_scope():
    init_default_scope('mmdet')


@pytest.fixture
def log():
    """What mmengine's current logger writes during the test, as one string (``log()``)."""
    import logging
    from mmengine.logging import MMLogger
    records = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield lambda: '\n'.join(records)
    logger.removeHandler(handler)


def _coco(tmp_path, n=4, ext='png'):
    """A 4-image COCO dir (32x48 images, one good box each); returns (root, annotation dict)."""
    os.makedirs(tmp_path / 'img', exist_ok=True)
    images, anns = [], []
    for i in range(n):
        name = f'{i:03d}.{ext}'
        cv2.imwrite(str(tmp_path / 'img' / name), np.full((32, 48, 3), 40 * i, np.uint8))
        images.append(dict(id=i, file_name=name, width=48, height=32))
        anns.append(dict(id=100 + i, image_id=i, category_id=1 + i % 3, bbox=[4, 4, 10, 8],
                         area=80, iscrowd=0))
    return tmp_path, dict(images=images, annotations=anns, categories=CATEGORIES)


def _write(root, content, name='ann.json'):
    path = root / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def _dataset(root, ann_file, **kwargs):
    kwargs.setdefault('pipeline', PIPELINE)
    return RobustCocoDataset(data_root=str(root), ann_file=ann_file, metainfo=META,
                             data_prefix=dict(img='img/'), **kwargs)


def test_good_data_loads_everything(tmp_path):
    root, coco = _coco(tmp_path)
    ds = _dataset(root, _write(root, coco))
    assert len(ds) == 4 and not ds.skipped_images and ds.clipped_boxes == 0
    assert ds[0]['data_samples'].gt_instances.bboxes.tensor.tolist() == [[4, 4, 14, 12]]


def test_missing_annotation_file_stops(tmp_path):
    root, _ = _coco(tmp_path)
    with pytest.raises(MissingDataError, match=r'annotation file not found: .*nope\.json'):
        _dataset(root, 'nope.json')


@pytest.mark.parametrize('content,message', [
    ('', r'ann\.json is empty \(0 bytes\)'),
    ('{"images": [', r'ann\.json is not valid JSON'),
    ('{}', r'ann\.json lists no images'),
    ('{"images": [], "annotations": [], "categories": []}', r'ann\.json lists no images'),
])
def test_empty_or_malformed_annotation_file_stops(tmp_path, content, message):
    root, _ = _coco(tmp_path)
    with pytest.raises(BadDataError, match=message):
        _dataset(root, _write(root, content))


BAD_ANNOTATIONS = {
    'unknown category': (dict(category_id=7),
                         r'annotation 101: unknown category_id 7 \(the file declares \[1, 2, 3\]\)'),
    'zero area': (dict(bbox=[4, 4, 0, 8]), r'annotation 101: bbox \[4, 4, 0, 8\] has zero or '
                  r'negative area \(w=0, h=8\)'),
    'negative area': (dict(bbox=[20, 4, -5, 8]), r'annotation 101: bbox \[20, 4, -5, 8\] has zero '
                      r'or negative area \(w=-5, h=8\)'),
    'outside image': (dict(bbox=[60, 4, 10, 8]), r'annotation 101: bbox \[60, 4, 10, 8\] lies '
                      r'outside the 48x32 image'),
    'malformed box': (dict(bbox=[1, 2, 3]), r'annotation 101: bbox \[1, 2, 3\] is not 4 finite '
                      r'numbers'),
}


@pytest.mark.parametrize('case', sorted(BAD_ANNOTATIONS))
def test_bad_annotation_skips_its_image_with_counted_warning(tmp_path, log, case):
    change, message = BAD_ANNOTATIONS[case]
    root, coco = _coco(tmp_path)
    coco['annotations'][1].update(change)  # image 1 (001.png), annotation 101
    ann_file = _write(root, coco)
    ds = _dataset(root, ann_file)
    out = log()
    assert [ds.get_data_info(i)['img_id'] for i in range(len(ds))] == [0, 2, 3]
    assert list(ds.skipped_images) == [str(root / 'img' / '001.png')]
    assert 'skipped 1 of 4 images with bad annotations' in out
    assert '001.png' in out and re.search(message, out)
    with pytest.raises(BadDataError, match=r'image 1 \(001\.png\): ' + message):
        _dataset(root, ann_file, bad_sample='error')


def test_box_partly_outside_is_clipped_and_counted(tmp_path, log):
    root, coco = _coco(tmp_path)
    coco['annotations'][2]['bbox'] = [40, -2, 20, 10]
    ds = _dataset(root, _write(root, coco))
    assert len(ds) == 4 and ds.clipped_boxes == 1
    assert ds.get_data_info(2)['instances'][0]['bbox'] == [40, 0, 48, 8]
    assert 'clipped 1 boxes to their image' in log()


def test_all_images_bad_is_an_error(tmp_path):
    root, coco = _coco(tmp_path)
    for a in coco['annotations']:
        a['category_id'] = 9
    with pytest.raises(BadDataError, match=r'no usable image .*\(4 skipped for bad annotations\)'):
        _dataset(root, _write(root, coco))


def test_bad_sample_policy_is_validated(tmp_path):
    root, coco = _coco(tmp_path)
    with pytest.raises(BadDataError, match=r"bad_sample='drop' is not one of \('skip', 'error'\)"):
        _dataset(root, _write(root, coco), bad_sample='drop')


def _break_image(root, how):
    path = root / 'img' / '002.jpg'
    if how == 'missing':
        os.remove(path)
        return path, 'image file not found'
    data = path.read_bytes()
    path.write_bytes(data[:2] + bytes(range(256)) * 4)  # JPEG magic, then garbage
    return path, 'image file is corrupt or not an image'


@pytest.mark.parametrize('how', ['missing', 'corrupt'])
def test_unreadable_image_is_skipped_in_training(tmp_path, log, how):
    root, coco = _coco(tmp_path, ext='jpg')
    path, problem = _break_image(root, how)
    ds = _dataset(root, _write(root, coco))
    np.random.seed(0)
    seen = [ds[i]['data_samples'].img_path for i in range(4)] + [ds[2]['data_samples'].img_path]
    assert str(path) not in seen and len(seen) == 5  # another sample was drawn instead
    assert list(ds.skipped_images) == [str(path)]
    assert ds.skipped_images[str(path)].startswith(problem)
    assert len(re.findall(re.escape(f'{path}: {problem}') + r'[^;]*; skipped \(1 images skipped '
                          'so far', log())) == 1  # warned once, though drawn twice


@pytest.mark.parametrize('how', ['missing', 'corrupt'])
def test_unreadable_image_stops_in_test_mode(tmp_path, how):
    root, coco = _coco(tmp_path, ext='jpg')
    path, problem = _break_image(root, how)
    ds = _dataset(root, _write(root, coco), test_mode=True)
    assert ds[1]['data_samples'].img_id == 1
    with pytest.raises(BadDataError, match=re.escape(f'{path}: {problem}') + '.*test mode'):
        ds[2]


def test_pipeline_errors_not_caused_by_the_image_still_raise(tmp_path):
    root, coco = _coco(tmp_path)
    bad_pipeline = copy.deepcopy(PIPELINE)
    bad_pipeline.insert(1, dict(type='Resize', scale=(0, 0)))
    ds = _dataset(root, _write(root, coco), pipeline=bad_pipeline)
    with pytest.raises(Exception) as e:
        ds[0]
    assert not isinstance(e.value, BadDataError)


def test_train_tool_missing_annotation_file_is_one_line(tiny_shapes, tmp_path):
    proc = run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                     'train_dataloader.dataset.ann_file=annotations/nope.json'],
                    shapes_root=tiny_shapes, check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    assert 'annotations/nope.json' in proc.stderr.strip().splitlines()[-1]


def test_train_tool_on_an_empty_data_root_is_one_line(tmp_path):
    """A data_root that exists but holds no dataset (was a FileNotFoundError traceback)."""
    root = tmp_path / 'empty'
    root.mkdir()
    proc = run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', str(tmp_path / 'w')],
                    shapes_root=str(root) + '/', check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert f'{root}/ exists but holds no shapes annotations' in last
    assert 'generate_shapes.py' in last


def test_images_without_any_annotation(tmp_path, log):
    """"annotations": [] (was a 48-line ValueError): as mmdet, fine for testing (COCO
    test-dev has none) and for training on background images with filter_empty_gt=False (a
    warning); with mmdet's training default filter_empty_gt=True, one line saying so."""
    root, coco = _coco(tmp_path)
    coco['annotations'] = []
    ann_file = _write(root, coco)
    with pytest.raises(BadDataError, match=r'no training image left in .*ann\.json: none of '
                                           r'its 4 images has an annotation; .*filter_empty_gt'
                                           r'=False'):
        _dataset(root, ann_file, filter_cfg=dict(filter_empty_gt=True))
    ds = _dataset(root, ann_file, filter_cfg=dict(filter_empty_gt=False))
    assert len(ds) == 4 and ds[0]['data_samples'].gt_instances.bboxes.tensor.shape == (0, 4)
    assert 'has no annotations: training on 4 background images only' in log()
    assert len(_dataset(root, ann_file, test_mode=True)) == 4
