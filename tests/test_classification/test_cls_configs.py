"""Every classification config builds and runs one training step on a tiny input; the ImageNet
configs carry the published recipe (tensorflow/tpu spinenet*_classification.yaml)."""
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement

from helpers import REPO
from test_configs import one_thread  # noqa: F401  (autouse: one intra-op thread)

CLS_ROOT = osp.join(REPO, 'configs', 'spinenet_cls')
OURS = sorted(glob.glob(osp.join(CLS_ROOT, '*.py')))
RECIPE = [p for p in OURS if p.endswith('_in1k.py') or p.endswith('_inat2017.py')]
#: TF yaml values: arch -> endpoint width
WIDTH = {'49': 256, '96': 256, '143': 256, '190': 512}
SIZE = 64


def _id(path):
    return osp.relpath(path, CLS_ROOT)


def test_the_configs_are_there():
    names = {_id(p) for p in OURS}
    for arch in WIDTH:
        assert f'spinenet-{arch}_32xb128-200e_in1k.py' in names
    assert 'spinenet-49_32xb128-200e_inat2017.py' in names
    assert 'spinenet-49s-tiny_1xb32-10e_shapes-cls.py' in names


@pytest.mark.parametrize('path', OURS, ids=_id)
def test_config_builds_and_trains_one_step(path):
    import mmdet_spine  # noqa: F401
    from mmdet.registry import MODELS
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet' and 'mmdet_spine' in cfg.custom_imports.imports
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    num_classes = cfg.model.head.num_classes
    imgs = [torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8) for _ in range(2)]
    samples = [BaseDataElement(gt_label=torch.tensor([i % num_classes])) for i in (0, 1)]
    data = model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    assert math.isfinite(loss.item())
    assert model.head.fc.out_features == num_classes
    if sum(p.numel() for p in model.parameters()) < 30e6:  # backward: seconds for the big ones
        loss.backward()
        stem = model.backbone.stem_conv.conv.weight
        assert stem.grad is not None and stem.grad.abs().sum() > 0


@pytest.mark.parametrize('path', RECIPE, ids=_id)
def test_imagenet_configs_carry_the_published_recipe(path):
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    arch = name.split('_')[0].split('-')[1]
    baseline = '-baseline_' in name
    bb, head = cfg.model.backbone, cfg.model.head
    assert bb.type == 'SpineNet' and bb.arch == arch
    assert head.in_channels == WIDTH[arch]
    assert head.num_classes == (5089 if 'inat2017' in name else 1000)
    assert cfg.model.neck == dict(type='PyramidAveragePooling', aggregation='all')
    # improved recipe: swish, stochastic depth 0.2, label smoothing 0.1; baseline: none of them
    assert bb.act_cfg.type == ('ReLU' if baseline else 'SiLU')  # swish, one kernel
    assert bb.drop_path_rate == (0.0 if baseline else 0.2)
    assert head.label_smoothing == (0.0 if baseline else 0.1)
    assert bb.norm_cfg.momentum == 0.1 and bb.norm_cfg.eps == 1e-5  # TF momentum 0.9
    # batch 4096 = 32 x 128; lr 1.6; 200 epochs; 5 warm-up epochs then cosine to 0
    assert cfg.train_dataloader.batch_size == 128 and cfg.auto_scale_lr.base_batch_size == 4096
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 1.6, 0.9, 1e-4)
    assert cfg.optim_wrapper.paramwise_cfg == dict(norm_decay_mult=0.0, bias_decay_mult=0.0)
    assert cfg.train_cfg.max_epochs == 200
    warm, cos = cfg.param_scheduler
    assert warm.type == 'LinearLR' and warm.end == 5 and warm.start_factor < 1e-3
    assert cos.type == 'CosineAnnealingLR' and (cos.begin, cos.end, cos.eta_min) == (5, 200, 0)
    train = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert train['InceptionCrop'].size == 224
    assert tuple(train['InceptionCrop'].scale) == (0.08, 1.0)
    test = {t.type: t for t in cfg.val_dataloader.dataset.pipeline}
    assert test['CenterCropResize'].size == 224 and test['CenterCropResize'].crop_fraction == 0.875
    # the header cites the upstream file
    with open(path) as f:
        assert f'spinenet{arch}_classification.yaml' in f.read()
