"""Bad options fail at build time naming the field, the value and the valid choices; a
checkpoint whose head shape differs says which keys were skipped and why."""
import logging

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

import mmdet_spine  # noqa: F401
from mmdet.registry import MODELS

from mmdet_spine.errors import UserError
from mmdet_spine.engine.distributed import setup_distributed
from mmdet_spine.models.detectors.efficientdet_scaling import efficientdet_variant

BIFPN = dict(type='BiFPN', in_channels=[40, 112, 320], out_channels=64, num_stages=3)

# (config, regex the error must match: field, value and choices)
BAD = {
    'spinenet arch': (dict(type='SpineNet', arch='50'),
                      r"arch='50' is not a SpineNet architecture; valid choices: 49S, 49, 96, "
                      r"143, 143L, 190"),
    'spinenet level': (dict(type='SpineNet', max_level=9),
                       r'max_level=9 is not a SpineNet level; valid choices: 1, 2, .*7'),
    'spinenet fusion': (dict(type='SpineNet', fusion='avg'),
                        r"fusion='avg' is not a fusion method; valid choices: sum, weighted, "
                        r'softmax'),
    'spinenet padding': (dict(type='SpineNet', padding_mode='same'),
                         r"padding_mode='same' is not a padding mode; valid choices: pytorch, "
                         r'tf_same'),
    'spinenet norm': (dict(type='SpineNet', norm_cfg=dict(type='BatchNorm3')),
                      r"SpineNet: norm_cfg.type='BatchNorm3' is not a normalization layer; "
                      r'valid choices: BN, .*GN, .*SyncBN'),
    'spinenet act': (dict(type='SpineNet', act_cfg=dict(type='Swishy')),
                     r"SpineNet: act_cfg.type='Swishy' is not an activation layer; valid "
                     r'choices: .*ReLU.*SiLU, Swish'),
    'mobile arch': (dict(type='SpineNetMobile', arch='96'),
                    r"arch='96' is not a SpineNetMobile architecture; valid choices: 49, 49S, "
                    r'49XS'),
    'mobile norm': (dict(type='SpineNetMobile', norm_cfg='BN'),
                    r"norm_cfg='BN' must be a dict with a 'type' key"),
    'resnet depth': (dict(type='SpineResNet', depth=42),
                     r'depth=42 is not a SpineResNet depth; valid choices: 18, 34, 50, 101, 152'),
    'resnet style': (dict(type='SpineResNet', depth=50, style='tf'),
                     r"style='tf' is not a ResNet style; valid choices: pytorch, caffe"),
    'resnet norm': (dict(type='SpineResNet', depth=18, norm_cfg=dict(type='FrozenBN')),
                    r"SpineResNet: norm_cfg.type='FrozenBN' is not a normalization layer; "
                    r'valid choices: BN'),
    'efficientnet arch': (dict(type='TFEfficientNet', arch='b9'),
                          r"arch='b9' is not an EfficientNet; valid choices: b0, b1, .*b7"),
    'efficientnet act': (dict(type='TFEfficientNet', act_cfg=dict(type='swish')),
                         r"TFEfficientNet: act_cfg.type='swish' is not an activation layer"),
    'bifpn fusion': (dict(BIFPN, fusion='mean'),
                     r"fusion='mean' is not a fusion method; valid choices: sum, weighted"),
    'bifpn input size': (dict(BIFPN, input_size=500),
                         r'input_size height 500 is not a multiple of 2\*\*7 = 128 .*nearest '
                         r'valid sizes: 384, 512'),
    'bifpn norm': (dict(BIFPN, norm_cfg=dict(type='LayerNormX')),
                   r"BiFPN: norm_cfg.type='LayerNormX' is not a normalization layer"),
}


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmdet')


@pytest.mark.parametrize('case', sorted(BAD))
def test_bad_option_names_field_value_and_choices(case):
    cfg, message = BAD[case]
    with pytest.raises((ValueError, KeyError), match=message):
        MODELS.build(cfg)


def test_bad_efficientdet_variant_and_dist_timeout():
    with pytest.raises(KeyError, match=r"variant='d9' is not an EfficientDet; valid choices: "
                                       r'd0, d1, .*d7x'):
        efficientdet_variant('d9')
    from mmengine.config import Config
    with pytest.raises(UserError, match=r"env_cfg.dist_cfg.timeout must be a positive number "
                                        r"of seconds, got 'soon'"):
        setup_distributed(Config(dict(env_cfg=dict(dist_cfg=dict(timeout='soon')))), 'pytorch')


class _Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 3)
        self.cls = nn.Conv2d(4, num_classes * 9, 3)


def _load_with_runner(tmp_path, model, path):
    """``load_from`` as the runner does it; returns the current logger's records."""
    from mmdet_spine.engine import SpineRunner
    runner = SpineRunner(model=model, work_dir=str(tmp_path / 'work'), default_scope='mmdet',
                         log_level='WARNING')
    records = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append((r.levelno, r.getMessage()))
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        runner.load_checkpoint(path, map_location='cpu')
    finally:
        logger.removeHandler(handler)
    return records


def test_head_shape_mismatch_is_listed_when_loading(tmp_path):
    src = _Net(80)
    torch.save({'state_dict': src.state_dict(), 'meta': {}}, tmp_path / 'coco.pth')
    dst = _Net(3)
    before = dst.cls.weight.detach().clone()
    records = _load_with_runner(tmp_path, dst, str(tmp_path / 'coco.pth'))
    warnings = [m for lvl, m in records if lvl == logging.WARNING and 'shape mismatch' in m]
    assert len(warnings) == 1
    msg = warnings[0]
    assert 'in 2 tensors, these weights were NOT loaded' in msg
    assert 'cls.weight: checkpoint [720, 4, 3, 3] vs model [27, 4, 3, 3]' in msg
    assert 'cls.bias: checkpoint [720] vs model [27]' in msg
    assert 'backbone' not in msg
    assert torch.equal(dst.backbone.weight, src.backbone.weight)  # the rest did load
    assert torch.equal(dst.cls.weight, before)  # the head kept its initialisation


def test_matching_checkpoint_logs_no_mismatch(tmp_path):
    src = _Net(3)
    torch.save({'state_dict': src.state_dict()}, tmp_path / 'same.pth')
    records = _load_with_runner(tmp_path, _Net(3), str(tmp_path / 'same.pth'))
    assert not [m for _, m in records if 'shape mismatch' in m]
