"""configs/efficientdet: every variant loads and follows the scaling table; the Det-AdvProp
zoo rows get the input those weights were trained on."""
import glob
import os.path as osp

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from helpers import REPO
from mmdet_spine.models.detectors import EFFICIENTDET_SCALING

#: One ``efficientdet_<variant>_bifpn_*_coco.py`` per row of the scaling table.
CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', 'efficientdet',
                                               'efficientdet_*_coco.py'))
                 if osp.basename(p).split('_')[1] in EFFICIENTDET_SCALING)


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
    assert cfg.model.bbox_head.anchor_generator.octave_base_scale == row['anchor_scale']
    assert cfg.model.neck.act_cfg.type == cfg.model.bbox_head.act_cfg.type == row['act']


def test_d0_config_builds():
    cfg = Config.fromfile(CONFIGS[0])
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'EfficientDet'


def _zoo_cfg(m):
    cfg = Config.fromfile(m.config)
    cfg.merge_from_dict(m.cfg_options)
    return cfg


def test_every_advprop_zoo_row_uses_the_advprop_input():
    """``tf_efficientdet_d*_ap`` (effdet 0.4.1: mean = std = 0.5, ``fill_color=0``)."""
    from mmdet_spine.zoo import load_model_index
    rows = [m for m in load_model_index().values() if '_ap-' in (m.url or '')]
    assert sorted(m.name for m in rows) == [f'efficientdet-d{i}-ap_effdet' for i in range(6)]
    for m in rows:
        cfg = _zoo_cfg(m)
        variant = m.name.split('-')[1]
        assert cfg.model.backbone.arch == EFFICIENTDET_SCALING[variant]['backbone'], m.name
        assert cfg.model.data_preprocessor.mean == [127.5] * 3, m.name
        assert cfg.model.data_preprocessor.std == [127.5] * 3, m.name
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            pad, = [t for t in cfg[loader].dataset.pipeline if t['type'] == 'Pad']
            assert tuple(pad['pad_val']['img']) == (0, 0, 0), (m.name, loader)
    # the ImageNet-normalised rows of the same models keep ImageNet's numbers
    d0 = _zoo_cfg(load_model_index()['efficientdet-d0_effdet'])
    assert d0.model.data_preprocessor.mean == [123.675, 116.28, 103.53]


def test_every_lite_zoo_row_uses_the_lite_input():
    from mmdet_spine.zoo import load_model_index
    rows = [m for m in load_model_index().values() if 'efficientdet_lite' in (m.url or '')]
    assert len(rows) == 6
    for m in rows:
        cfg = _zoo_cfg(m)
        assert cfg.model.data_preprocessor.mean == cfg.model.data_preprocessor.std == [127.5] * 3
        assert cfg.model.backbone.arch.startswith('lite')


def test_every_effdet_zoo_row_names_tests_that_exist():
    """``Upstream.Verified By`` (shown in the README zoo table) lists pytest node ids."""
    import re

    from mmdet_spine.zoo import load_model_index
    rows = [m for m in load_model_index().values() if m.converter == 'effdet2mmdet']
    assert len(rows) == 21
    for m in rows:
        tests = m.upstream.get('Verified By')
        assert tests and any('parity' in t for t in tests), m.name
        for node in tests:
            path, func = node.split('::')
            name, param = re.fullmatch(r'(\w+)(?:\[(\w+)\])?', func).groups()
            with open(osp.join(REPO, path)) as f:
                text = f.read()
            assert f'def {name}(' in text, node
            if param is not None:  # a parametrize id: a quoted string or a dict key there
                assert re.search(rf"'{param}'|\b{param}=", text), node
