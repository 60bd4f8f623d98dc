"""configs/efficientdet: every variant loads and follows the scaling table."""
import glob
import os.path as osp

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from helpers import REPO
from mmdet_spine.models.detectors import EFFICIENTDET_SCALING

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'efficientdet', 'efficientdet_d*_coco.py')))


def test_one_config_per_variant():
    names = [osp.basename(p).split('_')[1] for p in CONFIGS]
    assert names == sorted(EFFICIENTDET_SCALING)


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_follows_table(path):
    cfg = Config.fromfile(path)
    variant = osp.basename(path).split('_')[1]
    row = EFFICIENTDET_SCALING[variant]
    size = row['input_size']
    assert cfg.model.type == 'EfficientDet' and cfg.model.bbox_head.num_classes == 80
    assert cfg.model.backbone.arch == row['backbone']
    assert cfg.model.neck.out_channels == row['bifpn_channels']
    assert cfg.model.neck.num_stages == row['bifpn_stages']
    assert tuple(cfg.model.neck.input_size) == (size, size)
    assert cfg.model.bbox_head.stacked_convs == row['head_convs']
    pads = [t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'Pad']
    assert tuple(pads[0]['size']) == (size, size)
    assert cfg.train_cfg.max_epochs == (600 if variant in ('d7', 'd7x') else 300)
    assert cfg.custom_imports.imports == ['mmdet_spine']


def test_d0_config_builds():
    cfg = Config.fromfile(CONFIGS[0])
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'EfficientDet'
