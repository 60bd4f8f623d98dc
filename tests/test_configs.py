"""Every config under configs/ (outside _base_) loads, builds and trains one step on a CPU.

Each config is built as written (SyncBN turned into BN for the CPU) and runs one forward /
backward in ``mode='loss'`` on two small random images (two: batch norms at P7, 1x1 at
128 px, need more than one value) with two boxes each (and masks for the instance
segmentation models): the loss must be finite and gradients must reach the backbone.
"""
import glob
import math
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from helpers import REPO

CONFIG_ROOT = osp.join(REPO, 'configs')
CONFIGS = sorted(p for p in glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True)
                 if '_base_' not in osp.relpath(p, CONFIG_ROOT).split(osp.sep)
                 # classifiers: tests/test_classification/test_cls_configs.py
                 and osp.relpath(p, CONFIG_ROOT).split(osp.sep)[0] != 'spinenet_cls')
#: Models that take a few seconds or more for one CPU step at the test size.
SLOW = re.compile(r'spinenet-(96|143|190)_|efficientdet_d[4-7]')
#: Input side of the test images: 128, or the model's padding multiple where larger
#: (EfficientDet-D7x: 256 for P8).
TEST_SIZE = 128


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """One intra-op thread: on a busy CPU more threads make the first pass many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _id(path):
    return osp.relpath(path, CONFIG_ROOT)


def _params(paths):
    return [pytest.param(p, id=_id(p),
                         marks=[pytest.mark.slow] if SLOW.search(osp.basename(p)) else [])
            for p in paths]


def _load(path):
    cfg = Config.fromfile(path)
    assert 'model' in cfg, f'{_id(path)} defines no model: base files belong under configs/_base_/'
    return cfg


def _sample(size, boxes, labels, with_mask):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                         pad_shape=(size, size), scale_factor=(1.0, 1.0)))
    boxes = torch.tensor(boxes, dtype=torch.float32) * size
    gt = InstanceData(bboxes=boxes, labels=torch.tensor(labels))
    if with_mask:
        masks = np.zeros((len(boxes), size, size), dtype=np.uint8)
        for m, (x1, y1, x2, y2) in zip(masks, boxes.round().int().tolist()):
            m[y1:y2, x1:x2] = 1
        gt.masks = BitmapMasks(masks, size, size)
    sample.gt_instances = gt
    return sample


def _batch(model, size, with_mask):
    """Two random images with two boxes each, through the model's data preprocessor."""
    g = torch.Generator().manual_seed(0)
    imgs = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)
            for _ in range(2)]
    samples = [
        _sample(size, [[0.10, 0.15, 0.55, 0.70], [0.40, 0.30, 0.95, 0.90]], [0, 1], with_mask),
        _sample(size, [[0.05, 0.50, 0.35, 0.95], [0.30, 0.05, 0.90, 0.45]], [1, 2], with_mask),
    ]
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)


@pytest.mark.parametrize('path', _params(CONFIGS))
def test_config_trains_one_step(path):
    from mmdet.registry import MODELS
    cfg = _load(path)
    assert cfg.get('default_scope') == 'mmdet', 'inherit configs/_base_/default_runtime.py'
    assert 'mmdet_spine' in cfg.custom_imports.imports
    size = max(TEST_SIZE, cfg.model.data_preprocessor.get('pad_size_divisor', 1))
    neck = cfg.model.get('neck')
    if neck is not None and neck.get('input_size') is not None:
        neck.input_size = size  # fixed-size necks (BiFPN) are built for the test image
    rcnn_train = (cfg.model.get('train_cfg') or {}).get('rcnn')
    if rcnn_train is not None:  # fewer RoIs: the architecture is unchanged, the step cheap
        cfg.model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
        rcnn_train.sampler.num = 64
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.train()
    data = _batch(model, size, with_mask='mask_head' in cfg.model.get('roi_head', {}))
    losses = model(**data, mode='loss')
    loss, log_vars = model.parse_losses(losses)
    assert math.isfinite(loss.item()), log_vars
    loss.backward()
    first = next(p for p in model.backbone.parameters() if p.requires_grad)
    assert first.grad is not None and torch.isfinite(first.grad).all()
    assert first.grad.abs().sum() > 0, 'no gradient reached the backbone stem'


COCO_RECIPE = [p for p in CONFIGS if re.search(r'_32xb8-lsj-\d+e_coco-\d+\.py$', p)]


@pytest.mark.parametrize('path', _params(COCO_RECIPE))
def test_recipe_config_matches_its_name(path):
    """``32xb8-lsj-<E>e_coco-<S>``: 8 images a GPU, E epochs, LSJ and padding at S x S."""
    cfg = _load(path)
    epochs, size = map(int, re.search(r'lsj-(\d+)e_coco-(\d+)', path).groups())
    assert cfg.train_dataloader.batch_size == 8
    assert cfg.auto_scale_lr.base_batch_size == 256
    assert cfg.train_cfg.max_epochs == epochs
    steps = next(s for s in cfg.param_scheduler if s.type == 'MultiStepLR')
    assert steps.end == epochs and max(steps.milestones) < epochs
    by_type = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert tuple(by_type['RandomResize'].scale) == (size, size)
    # LSJ 0.1-2.0; SpineNet-Mobile 0.5-2.0 as TF's coco_spinenet49*_mobile_tpu.yaml
    jitter = (0.5, 2.0) if 'spinenet-mobile' in path else (0.1, 2.0)
    assert tuple(by_type['RandomResize'].ratio_range) == jitter
    assert tuple(by_type['RandomCrop'].crop_size) == (size, size)
    assert tuple(by_type['Pad'].size) == (size, size)
    assert by_type['LoadAnnotations'].get('with_mask', False) == ('mask-rcnn' in path)
    optim = cfg.optim_wrapper
    assert optim.optimizer.type == 'SGD' and optim.optimizer.lr == 0.32
    assert optim.paramwise_cfg.bypass_duplicate
    assert optim.paramwise_cfg.norm_decay_mult == 0 and optim.paramwise_cfg.bias_decay_mult == 0


@pytest.mark.parametrize('arch,anchor,width,convs', [
    ('49s', 3, 128, 4), ('49', 3, 256, 4), ('96', 3, 256, 4), ('143', 4, 256, 4),
    ('190', 4, 512, 7)])
def test_retinanet_spinenet_follows_paper(arch, anchor, width, convs):
    """Head width / depth and anchor size per model (paper / TF configs)."""
    path, = glob.glob(osp.join(CONFIG_ROOT, 'spinenet', f'retinanet_spinenet-{arch}_32xb8-lsj-500e_coco-*.py'))
    cfg = Config.fromfile(path)
    head = cfg.model.bbox_head
    assert cfg.model.backbone.arch == arch.upper()
    assert cfg.model.neck is None and head.type == 'RetinaSepBNActHead'
    assert (head.in_channels, head.feat_channels, head.stacked_convs) == (width, width, convs)
    assert head.anchor_generator.octave_base_scale == anchor
    assert head.anchor_generator.scales_per_octave == 3
    assert cfg.model.backbone.drop_path_rate == 0.2
    assert cfg.model.backbone.norm_cfg.type == 'SyncBN'
