"""Classification data: the generated shapes dataset, the three annotation layouts, TF's
crops, packing, and the top-k accuracy metric."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

import mmdet_spine  # noqa: F401
from mmdet_spine.classification import (CenterCropResize, ClassificationAccuracy,
                                        ImageClassificationDataset, InceptionCrop,
                                        PackClassificationInputs, ShapesClassificationDataset)
from mmdet_spine.classification.datasets import (SHAPE_CLASSES, center_crop_box,
                                                 generate_shapes_classification)
from mmdet_spine.errors import BadDataError, ConfigError

TINY = dict(num_train_per_class=3, num_val_per_class=2, img_size=32, seed=0)


def _digest(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            with open(osp.join(dirpath, f), 'rb') as fh:
                out[osp.relpath(osp.join(dirpath, f), root)] = fh.read()
    return out


def test_shapes_generation_is_deterministic_and_complete(tmp_path):
    a = generate_shapes_classification(str(tmp_path / 'a'), **TINY)
    b = generate_shapes_classification(str(tmp_path / 'b'), **TINY)
    assert _digest(a) == _digest(b)
    c = generate_shapes_classification(str(tmp_path / 'c'), **dict(TINY, seed=1))
    assert _digest(a) != _digest(c)
    assert len(SHAPE_CLASSES) >= 5
    for split, n in (('train', 3), ('val', 2)):
        for kind in SHAPE_CLASSES:
            files = sorted(os.listdir(osp.join(a, split, kind)))
            assert files == [f'{i:06d}.png' for i in range(n)]
            img = cv2.imread(osp.join(a, split, kind, files[0]))
            assert img.shape == (32, 32, 3) and img.std() > 5


def test_shapes_dataset_generates_on_first_use_and_labels_by_class(tmp_path):
    root = str(tmp_path / 'shapes_cls') + '/'
    ds = ShapesClassificationDataset(data_root=root, split='val', generate_cfg=TINY)
    assert ds.metainfo['classes'] == SHAPE_CLASSES
    assert len(ds) == 2 * len(SHAPE_CLASSES)
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        assert osp.basename(osp.dirname(info['img_path'])) == SHAPE_CLASSES[info['gt_label']]
    # asking for other settings under the same root is an error, not a silent reuse
    with pytest.raises(BadDataError, match='was generated with'):
        ShapesClassificationDataset(data_root=root, generate_cfg=dict(TINY, img_size=48))
    with pytest.raises(ConfigError, match='unknown keys'):
        ShapesClassificationDataset(data_root=root, generate_cfg=dict(size=3))
    with pytest.raises(BadDataError, match='auto_generate=True'):
        ShapesClassificationDataset(data_root=str(tmp_path / 'none'), auto_generate=False)


def _images(root, names):
    for name in names:
        os.makedirs(osp.dirname(osp.join(root, name)), exist_ok=True)
        cv2.imwrite(osp.join(root, name), np.zeros((4, 4, 3), np.uint8))


def test_folder_list_and_json_layouts(tmp_path):
    root = str(tmp_path)
    _images(osp.join(root, 'train'), ['b/1.jpg', 'a/2.png', 'a/1.png', 'c/x/3.jpeg'])
    ds = ImageClassificationDataset(data_root=root, data_prefix='train', lazy_init=False)
    assert ds.metainfo['classes'] == ('a', 'b', 'c')
    got = [(osp.relpath(d['img_path'], osp.join(root, 'train')), d['gt_label'])
           for d in ds.load_data_list()]
    assert got == [('a/1.png', 0), ('a/2.png', 0), ('b/1.jpg', 1), ('c/x/3.jpeg', 2)]
    # given class names order the labels
    ds = ImageClassificationDataset(data_root=root, data_prefix='train', classes=['c', 'a', 'b'])
    assert [d['gt_label'] for d in ds.load_data_list()] == [0, 1, 1, 2]

    with open(osp.join(root, 'list.txt'), 'w') as f:
        f.write('b/1.jpg 4\n\na/my image.png 2\n')
    ds = ImageClassificationDataset(data_root=root, data_prefix='train', ann_file='list.txt')
    assert [(osp.basename(d['img_path']), d['gt_label']) for d in ds.load_data_list()] == \
        [('1.jpg', 4), ('my image.png', 2)]
    assert ds.metainfo['classes'] == ('0', '1', '2', '3', '4')

    inat = dict(images=[dict(id=7, file_name='b/1.jpg'), dict(id=9, file_name='a/1.png')],
                annotations=[dict(image_id=9, category_id=40), dict(image_id=7, category_id=12)],
                categories=[dict(id=40, name='owl'), dict(id=12, name='ant')])
    with open(osp.join(root, 'train2017.json'), 'w') as f:
        json.dump(inat, f)
    ds = ImageClassificationDataset(data_root=root, data_prefix='train',
                                    ann_file='train2017.json')
    assert ds.metainfo['classes'] == ('ant', 'owl')
    assert [(osp.basename(d['img_path']), d['gt_label']) for d in ds.load_data_list()] == \
        [('1.png', 1), ('1.jpg', 0)]


@pytest.mark.parametrize('kwargs,match', [
    (dict(data_prefix='missing'), 'does not exist'),
    (dict(ann_file='nothing.txt'), 'does not exist'),
    (dict(ann_file='bad.txt'), r'bad.txt:1: expected'),
    (dict(data_prefix='train', classes=['a', 'zebra']), r"no sub-folder for the classes \['zebra'\]"),
])
def test_bad_data_is_one_line(tmp_path, kwargs, match):
    _images(str(tmp_path / 'train'), ['a/1.png'])
    (tmp_path / 'bad.txt').write_text('a/1.png cat\n')
    with pytest.raises(BadDataError, match=match):
        ImageClassificationDataset(data_root=str(tmp_path), **kwargs)


def test_inception_crop_samples_tf_ranges_and_falls_back_to_the_centre():
    np.random.seed(0)
    t = InceptionCrop(size=(20, 30))
    areas, aspects = [], []
    for _ in range(300):
        y, x, h, w = t.crop_box(100, 200)
        assert 0 <= y and y + h <= 100 and 0 <= x and x + w <= 200
        areas.append(h * w / 20000)
        aspects.append(w / h)
    assert 0.07 < min(areas) and max(areas) <= 1.0 and np.mean(areas) > 0.3
    assert 0.7 < min(aspects) and max(aspects) < 1.4
    out = t({'img': np.zeros((100, 200, 3), np.uint8)})
    assert out['img'].shape == (20, 30, 3) and out['img_shape'] == (20, 30)
    # an impossible area range (a 1x50 image cannot hold an aspect 3/4..4/3 crop of 50 %)
    np.random.seed(0)
    assert InceptionCrop(scale=(0.5, 1.0)).crop_box(1, 50) == center_crop_box(1, 50, 0.875)
    with pytest.raises(ConfigError, match='scale'):
        InceptionCrop(scale=(0.5, 0.1))


def test_center_crop_resize_is_tf_central_fraction():
    assert center_crop_box(256, 320, 0.875) == (16, 48, 224, 224)
    img = np.arange(256 * 320 * 3, dtype=np.uint8).reshape(256, 320, 3)
    out = CenterCropResize(size=224)({'img': img})
    np.testing.assert_array_equal(out['img'], img[16:240, 48:272])
    with pytest.raises(ConfigError, match='crop_fraction=0'):
        CenterCropResize(crop_fraction=0)


def test_pack_classification_inputs():
    img = np.random.randint(0, 255, (5, 6, 3), np.uint8)
    packed = PackClassificationInputs()(dict(img=img, gt_label=3, img_path='x.png',
                                             img_shape=(5, 6)))
    assert packed['inputs'].shape == (3, 5, 6) and packed['inputs'].dtype == torch.uint8
    torch.testing.assert_close(packed['inputs'][1], torch.from_numpy(img[..., 1]))
    s = packed['data_samples']
    assert s.gt_label.tolist() == [3] and s.img_path == 'x.png'


def test_accuracy_metric_top1_top5():
    init_default_scope('mmdet')
    metric = ClassificationAccuracy(topk=(1, 2, 9))
    scores = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.25, 0.35, 0.4], [0.6, 0.3, 0.1]])
    labels = [0, 2, 0, 2]  # top-1 right: 1 of 4; within top-2: 2 of 4; top-9 = all
    metric.process(None, [dict(pred_score=s, gt_label=torch.tensor([lab]))
                          for s, lab in zip(scores, labels)])
    res = metric.evaluate(4)
    assert res == {'accuracy/top1': 25.0, 'accuracy/top2': 50.0, 'accuracy/top9': 100.0}
    with pytest.raises(BadDataError, match='pred_score'):
        metric.process(None, [dict(gt_label=torch.tensor([0]))])
    with pytest.raises(ConfigError, match='topk'):
        ClassificationAccuracy(topk=(0,))
