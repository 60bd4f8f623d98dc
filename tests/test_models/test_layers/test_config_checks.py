"""Every numeric argument of the SpineNet-side modules is checked at build time: a bad value is
one ``ConfigError`` naming the module, the field, the value and the valid range (#14)."""
import pytest
import torch
import torch.nn as nn
from mmengine.registry import init_default_scope

import mmdet_spine  # noqa: F401
from mmdet.registry import MODELS
from mmdet_spine.errors import ConfigError
from mmdet_spine.models.layers import (BottleneckBlock, Conv2dTFSame, CrossScaleResample,
                                       DepthwiseCrossScaleResample, FeatureFusion,
                                       MaxPool2dTFSame, ResidualBlock, SeparableConvModule,
                                       TFSamePad2d, tf_conv_init)
from mmdet_spine.models.layers.config_checks import (FRACTION, POSITIVE, POSITIVE_INT, RATE,
                                                     Bound, Choice, Each, Flag, OrNone,
                                                     bound_arguments, check_fields,
                                                     check_levels, check_range)

TINY = dict(type='SpineNet', arch='49', filter_size_scale=0.125, endpoints_num_filters=8)
ANCHORS = dict(type='AnchorGenerator', octave_base_scale=3, scales_per_octave=3,
               ratios=[1.0], strides=[8, 16, 32])
RETINA = dict(type='RetinaSepBNActHead', num_classes=3, num_ins=3, in_channels=8,
              feat_channels=8, stacked_convs=2, norm_cfg=dict(type='BN'),
              anchor_generator=ANCHORS)
RPN = dict(type='RPNSepBNHead', num_ins=3, in_channels=8, feat_channels=8, num_convs=1,
           anchor_generator=ANCHORS)
BBOX = dict(type='NormActConvFCBBoxHead', num_shared_convs=1, num_shared_fcs=1, in_channels=4,
            conv_out_channels=4, fc_out_channels=8, roi_feat_size=3, num_classes=3,
            norm_cfg=dict(type='BN'))
MASK = dict(type='NormActFCNMaskHead', num_convs=1, in_channels=4, conv_out_channels=4,
            num_classes=3, norm_cfg=dict(type='BN'))


def cfg(base, **kwargs):
    return dict(base, **kwargs)


# (id, config dict to build or a callable, the message the ConfigError must contain)
CASES = [
    # SpineNet
    ('spinenet filter_size_scale<0', cfg(TINY, filter_size_scale=-1),
     'SpineNet: filter_size_scale=-1 must be > 0'),
    ('spinenet filter_size_scale=0', cfg(TINY, filter_size_scale=0),
     'SpineNet: filter_size_scale=0 must be > 0'),
    ('spinenet filter_size_scale tiny', cfg(TINY, filter_size_scale=0.001),
     'SpineNet: filter_size_scale=0.001 must be >= 0.01562 (it gives int(64 x 0.001) = 0 '
     'filters at level 2)'),
    ('spinenet filter_size_scale str', cfg(TINY, filter_size_scale='big'),
     "SpineNet: filter_size_scale='big' must be a number > 0"),
    ('spinenet endpoints_num_filters=0', cfg(TINY, endpoints_num_filters=0),
     'SpineNet: endpoints_num_filters=0 must be >= 1'),
    ('spinenet endpoints_num_filters<0', cfg(TINY, endpoints_num_filters=-8),
     'SpineNet: endpoints_num_filters=-8 must be >= 1'),
    ('spinenet endpoints_num_filters float', cfg(TINY, endpoints_num_filters=8.5),
     'SpineNet: endpoints_num_filters=8.5 must be an integer >= 1'),
    ('spinenet resample_alpha=0', cfg(TINY, resample_alpha=0),
     'SpineNet: resample_alpha=0 must be > 0'),
    ('spinenet resample_alpha tiny', cfg(TINY, resample_alpha=0.01),
     'SpineNet: resample_alpha=0.01 must be >= 0.125 (it gives int(8 x 0.01) = 0 channels'),
    ('spinenet block_repeats=0', cfg(TINY, block_repeats=0),
     'SpineNet: block_repeats=0 must be >= 1'),
    ('spinenet in_channels=0', cfg(TINY, in_channels=0),
     'SpineNet: in_channels=0 must be >= 1'),
    ('spinenet drop_path_rate<0', cfg(TINY, drop_path_rate=-0.5),
     'SpineNet: drop_path_rate=-0.5 must be in [0, 1)'),
    ('spinenet drop_path_rate>1', cfg(TINY, drop_path_rate=1.5),
     'SpineNet: drop_path_rate=1.5 must be in [0, 1)'),
    ('spinenet min>max level', cfg(TINY, min_level=6, max_level=4),
     'SpineNet: min_level=6 must be <= max_level=4'),
    ('spinenet level', cfg(TINY, min_level=0),
     'SpineNet: min_level=0 is not a SpineNet level; valid choices: 1, 2, 3, 4, 5, 6, 7'),
    ('spinenet frozen_stages', cfg(TINY, frozen_stages=-2),
     'SpineNet: frozen_stages=-2 must be in -1..17'),
    ('spinenet norm_eval str', cfg(TINY, norm_eval='False'),
     "SpineNet: norm_eval='False' must be True or False"),
    ('spinenet fusion', cfg(TINY, fusion='avg'),
     "SpineNet: fusion='avg' is not a fusion method; valid choices: sum, weighted, softmax"),
    ('spinenet arch', cfg(TINY, arch='50'),
     "SpineNet: arch='50' is not a SpineNet architecture; valid choices: 49S, 49, 96"),
    ('spinenet empty specs', cfg(TINY, block_specs=[]),
     'SpineNet: block_specs=[] must be a non-empty list'),
    # SpineNet-Mobile
    ('mobile se_ratio=0', dict(type='SpineNetMobile', arch='49XS', se_ratio=0),
     'SpineNetMobile: se_ratio=0 must be in (0, 1]'),
    ('mobile se_ratio>1', dict(type='SpineNetMobile', arch='49XS', se_ratio=1.5),
     'SpineNetMobile: se_ratio=1.5 must be in (0, 1]'),
    ('mobile expand_ratio', dict(type='SpineNetMobile', arch='49XS', expand_ratio=0),
     'SpineNetMobile: expand_ratio=0 must be >= 1'),
    ('mobile resample_alpha', dict(type='SpineNetMobile', arch='49XS', resample_alpha=0.5),
     'SpineNetMobile: resample_alpha=0.5 is not used'),
    ('mobile filter_size_scale', dict(type='SpineNetMobile', arch='49XS',
                                      filter_size_scale=0.1),
     'SpineNetMobile: filter_size_scale=0.1 must be >= 0.125 (it gives int(8 x 0.1) = 0 '
     'filters at level 0)'),
    ('mobile endpoints', dict(type='SpineNetMobile', arch='49XS', endpoints_num_filters=0),
     'SpineNetMobile: endpoints_num_filters=0 must be >= 1'),
    # SpineResNet
    ('resnet depth', dict(type='SpineResNet', depth=42),
     'SpineResNet: depth=42 is not a SpineResNet depth; valid choices: 18, 34, 50, 101, 152'),
    ('resnet in_channels', dict(type='SpineResNet', depth=18, in_channels=0),
     'SpineResNet: in_channels=0 must be >= 1'),
    ('resnet stem_channels', dict(type='SpineResNet', depth=18, stem_channels=-1),
     'SpineResNet: stem_channels=-1 must be >= 1'),
    ('resnet base_channels', dict(type='SpineResNet', depth=18, base_channels=0),
     'SpineResNet: base_channels=0 must be >= 1'),
    ('resnet num_stages', dict(type='SpineResNet', depth=18, num_stages=5),
     'SpineResNet: num_stages=5 must be in 1..4'),
    ('resnet strides', dict(type='SpineResNet', depth=18, strides=(1, 0, 2, 2)),
     'SpineResNet: strides[1]=0 must be >= 1'),
    ('resnet dilations', dict(type='SpineResNet', depth=18, dilations=(1, 1, 1, -2)),
     'SpineResNet: dilations[3]=-2 must be >= 1'),
    ('resnet out_indices', dict(type='SpineResNet', depth=18, out_indices=(-1, 3)),
     'SpineResNet: out_indices[0]=-1 must be >= 0'),
    ('resnet groups', dict(type='SpineResNet', depth=50, groups=0),
     'SpineResNet: groups=0 must be >= 1'),
    ('resnet base_width', dict(type='SpineResNet', depth=50, groups=32, base_width=0),
     'SpineResNet: base_width=0 must be >= 1'),
    ('resnet grouped width 0', dict(type='SpineResNet', depth=50, groups=2, base_width=4,
                                    base_channels=8),
     'BottleneckBlock: base_width=4 must be >= 8 for planes=8'),
    ('resnet drop_path_rate', dict(type='SpineResNet', depth=18, drop_path_rate=1.0),
     'SpineResNet: drop_path_rate=1.0 must be in [0, 1)'),
    ('resnet num_classes', dict(type='SpineResNet', depth=18, num_classes=0),
     'SpineResNet: num_classes=0 must be >= 1'),
    ('resnet frozen_stages', dict(type='SpineResNet', depth=18, num_stages=3, out_indices=(0, 1, 2),
                                    frozen_stages=4),
     'SpineResNet: frozen_stages=4 must be in -1..3 (0: stem, n: + layer1..layer<n>)'),
    ('resnet norm_eval', dict(type='SpineResNet', depth=18, norm_eval=1),
     'SpineResNet: norm_eval=1 must be True or False'),
    # layers
    ('resample in_channels', lambda: CrossScaleResample(0, 4, 8, 3, 4),
     'CrossScaleResample: in_channels=0 must be >= 1'),
    ('resample mid_channels', lambda: CrossScaleResample(8, 0, 8, 3, 4),
     'CrossScaleResample: mid_channels=0 must be >= 1'),
    ('resample out_level', lambda: CrossScaleResample(8, 4, 8, 3, -1),
     'CrossScaleResample: out_level=-1 must be >= 0'),
    ('resample padding', lambda: CrossScaleResample(8, 4, 8, 3, 4, padding_mode='SAME'),
     "CrossScaleResample: padding_mode='SAME' is not a padding mode; valid choices: pytorch, "
     'tf_same'),
    ('dw resample out_channels', lambda: DepthwiseCrossScaleResample(8, 0, 3, 4),
     'DepthwiseCrossScaleResample: out_channels=0 must be >= 1'),
    ('dw resample level', lambda: DepthwiseCrossScaleResample(8, 8, 2.5, 4),
     'DepthwiseCrossScaleResample: in_level=2.5 must be an integer >= 0'),
    ('fusion num_inputs', lambda: FeatureFusion(0),
     'FeatureFusion: num_inputs=0 must be >= 1'),
    ('fusion eps', lambda: FeatureFusion(2, 'weighted', eps=0),
     'FeatureFusion: eps=0 must be > 0'),
    ('fusion method', lambda: FeatureFusion(2, 'mean'),
     "FeatureFusion: method='mean' is not a fusion method"),
    ('residual planes', lambda: ResidualBlock(8, 0), 'ResidualBlock: planes=0 must be >= 1'),
    ('residual stride', lambda: ResidualBlock(8, 8, stride=0),
     'ResidualBlock: stride=0 must be >= 1'),
    ('residual dilation', lambda: ResidualBlock(8, 8, dilation=0),
     'ResidualBlock: dilation=0 must be >= 1'),
    ('residual drop_path', lambda: ResidualBlock(8, 8, drop_path_rate=1),
     'ResidualBlock: drop_path_rate=1 must be in [0, 1)'),
    ('bottleneck groups', lambda: BottleneckBlock(8, 8, groups=0),
     'BottleneckBlock: groups=0 must be >= 1'),
    ('bottleneck in_channels', lambda: BottleneckBlock(-4, 8),
     'BottleneckBlock: in_channels=-4 must be >= 1'),
    ('bottleneck with_cp', lambda: BottleneckBlock(8, 8, with_cp='no'),
     "BottleneckBlock: with_cp='no' must be True or False"),
    ('separable channels', lambda: SeparableConvModule(0, 8),
     'SeparableConvModule: in_channels=0 must be >= 1'),
    ('separable kernel', lambda: SeparableConvModule(8, 8, kernel_size=2),
     'SeparableConvModule: kernel_size=2 must be an odd integer >= 1'),
    ('separable stride', lambda: SeparableConvModule(8, 8, stride=0),
     'SeparableConvModule: stride=0 must be >= 1'),
    ('separable norm', lambda: SeparableConvModule(8, 8, norm_cfg=dict(type='BNX')),
     "SeparableConvModule: norm_cfg.type='BNX' is not a normalization layer"),
    ('tf pad kernel', lambda: TFSamePad2d(0, 2), 'TFSamePad2d: kernel_size=0 must be >= 1'),
    ('tf pad input_size', lambda: TFSamePad2d(3, 2, input_size=(64, 0)),
     'TFSamePad2d: input_size[1]=0 must be >= 1'),
    ('tf conv stride', lambda: Conv2dTFSame(3, 8, 3, stride=0),
     'Conv2dTFSame: stride=0 must be >= 1'),
    ('tf conv channels', lambda: Conv2dTFSame(3, 0, 3), 'Conv2dTFSame: out_channels=0 must be'),
    ('tf pool stride', lambda: MaxPool2dTFSame(3, (2, 0)),
     'MaxPool2dTFSame: stride[1]=0 must be >= 1'),
    ('tf init kind', lambda: tf_conv_init(nn.Conv2d(1, 1, 1), 'he'),
     "tf_conv_init: kind='he' is not a TF initialiser; valid choices: efficientnet"),
    # heads
    ('retina num_classes', cfg(RETINA, num_classes=0),
     'RetinaSepBNActHead: num_classes=0 must be >= 1'),
    ('retina stacked_convs', cfg(RETINA, stacked_convs=0),
     'RetinaSepBNActHead: stacked_convs=0 must be >= 1'),
    ('retina feat_channels', cfg(RETINA, feat_channels=-8),
     'RetinaSepBNActHead: feat_channels=-8 must be >= 1'),
    ('retina num_ins vs strides', cfg(RETINA, num_ins=4),
     'RetinaSepBNActHead: num_ins=4 must equal the number of anchor_generator.strides='
     '[8, 16, 32] (3 levels)'),
    ('retina separable', cfg(RETINA, separable='yes'),
     "RetinaSepBNActHead: separable='yes' must be True or False"),
    ('retina act', cfg(RETINA, act_cfg=dict(type='Swishy')),
     "RetinaSepBNActHead: act_cfg.type='Swishy' is not an activation layer"),
    ('rpn num_convs', cfg(RPN, num_convs=0), 'RPNSepBNHead: num_convs=0 must be >= 1'),
    ('rpn in_channels', cfg(RPN, in_channels=0), 'RPNSepBNHead: in_channels=0 must be >= 1'),
    ('rpn num_ins vs strides', cfg(RPN, num_ins=5),
     'RPNSepBNHead: num_ins=5 must equal the number of anchor_generator.strides'),
    ('rpn norm', cfg(RPN, norm_cfg=dict(type='bn')),
     "RPNSepBNHead: norm_cfg.type='bn' is not a normalization layer"),
    ('bbox fc_out_channels', cfg(BBOX, fc_out_channels=0),
     'NormActConvFCBBoxHead: fc_out_channels=0 must be >= 1'),
    ('bbox num_shared_convs', cfg(BBOX, num_shared_convs=-1),
     'NormActConvFCBBoxHead: num_shared_convs=-1 must be >= 0'),
    ('bbox no layers', cfg(BBOX, num_shared_convs=0, num_shared_fcs=0),
     'NormActConvFCBBoxHead: num_shared_convs=0, num_shared_fcs=0, num_cls_convs=0'),
    ('bbox roi_feat_size', cfg(BBOX, roi_feat_size=0),
     'NormActConvFCBBoxHead: roi_feat_size=0 must be >= 1'),
    ('bbox num_classes', cfg(BBOX, num_classes=0),
     'NormActConvFCBBoxHead: num_classes=0 must be >= 1'),
    ('mask num_convs', cfg(MASK, num_convs=-1),
     'NormActFCNMaskHead: num_convs=-1 must be >= 0'),
    ('mask kernel', cfg(MASK, conv_kernel_size=2),
     'NormActFCNMaskHead: conv_kernel_size=2 must be an odd integer >= 1'),
    ('mask upsample type', cfg(MASK, upsample_cfg=dict(type='bicubic', scale_factor=2)),
     "NormActFCNMaskHead: upsample_cfg.type='bicubic' is not an upsampling type; valid "
     'choices: None, deconv, nearest, bilinear, carafe'),
    ('mask upsample scale', cfg(MASK, upsample_cfg=dict(type='deconv', scale_factor=1.5)),
     'NormActFCNMaskHead: upsample_cfg.scale_factor=1.5 must be an integer >= 1'),
    ('mask num_classes', cfg(MASK, num_classes=0),
     'NormActFCNMaskHead: num_classes=0 must be >= 1'),
]


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmdet')


@pytest.mark.parametrize('build, message', [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_value_is_one_config_error_naming_field_value_and_range(build, message):
    with pytest.raises(ConfigError) as info:
        build() if callable(build) else MODELS.build(build)
    text = str(info.value)
    assert message in text
    assert '\n' not in text


def test_the_table_covers_every_module():
    owners = {c[2].split(':')[0] for c in CASES}
    assert owners == {
        'SpineNet', 'SpineNetMobile', 'SpineResNet', 'BottleneckBlock', 'CrossScaleResample',
        'DepthwiseCrossScaleResample', 'FeatureFusion', 'ResidualBlock', 'SeparableConvModule',
        'TFSamePad2d', 'Conv2dTFSame', 'MaxPool2dTFSame', 'tf_conv_init', 'RetinaSepBNActHead',
        'RPNSepBNHead', 'NormActConvFCBBoxHead', 'NormActFCNMaskHead'}


@pytest.mark.parametrize('build', [
    cfg(TINY, filter_size_scale=0.0157, resample_alpha=1.0, drop_path_rate=0.99,
        frozen_stages=17, min_level=4, max_level=4),
    dict(type='SpineNetMobile', arch='49XS', se_ratio=1.0, expand_ratio=1),
    dict(type='SpineResNet', depth=50, groups=32, base_width=4, num_stages=2,
         out_indices=(1,), frozen_stages=2, strides=(1, 2), dilations=(1, 1),
         stage_with_dcn=(False, False), num_classes=1),
    cfg(RETINA, separable=True), cfg(RPN, num_convs=2), cfg(BBOX, roi_feat_size=(3, 3)),
    cfg(MASK, num_convs=0, upsample_cfg=dict(type='bilinear', scale_factor=1.5)),
], ids=['spinenet', 'mobile', 'resnext', 'retina', 'rpn', 'bbox', 'mask'])
def test_edge_values_still_build(build):
    assert isinstance(MODELS.build(build), nn.Module)


def test_layer_edge_values_still_build():
    assert CrossScaleResample(8, 1, 8, 0, 0)(torch.rand(1, 8, 4, 4)).shape == (1, 8, 4, 4)
    assert SeparableConvModule(1, 1, kernel_size=1)(torch.rand(1, 1, 3, 3)).shape == (1, 1, 3, 3)
    assert TFSamePad2d((3, 1), 2, input_size=8).static_pad == (0, 0, 0, 1)
    assert FeatureFusion(1, 'softmax', eps=1e-9).num_inputs == 1


def test_rules():
    with pytest.raises(ConfigError, match=r'^M: x=0 must be > 0$'):
        check_range('M', 'x', 0, 0, low_open=True)
    with pytest.raises(ConfigError, match=r'^M: x=nan must be in \[0, 1\)$'):
        check_fields('M', dict(x=RATE), dict(x=float('nan')))
    with pytest.raises(ConfigError, match=r'^M: x=inf must be > 0$'):
        check_fields('M', dict(x=POSITIVE), dict(x=float('inf')))
    with pytest.raises(ConfigError, match=r'^M: x=True must be an integer >= 1$'):
        check_fields('M', dict(x=POSITIVE_INT), dict(x=True))
    with pytest.raises(ConfigError, match=r'^M: x=3 must be in \[-1, 2\] \(why\)$'):
        Bound(-1, 2, hint='why').check('M', 'x', 3)
    with pytest.raises(ConfigError, match=r'^M: x=\(1, 2, 3\) must have 2 entries, got 3$'):
        Each(POSITIVE_INT, length=2).check('M', 'x', (1, 2, 3))
    with pytest.raises(ConfigError, match=r"^M: x=1 is not a level; valid choices: a, b$"):
        Choice(('a', 'b'), 'a level').check('M', 'x', 1)
    with pytest.raises(ConfigError, match=r'^M: min_level=4 must be <= max_level=3$'):
        check_levels('M', 4, 3, range(2, 8))
    with pytest.raises(ConfigError, match=r"^M: max_level=9 is not a M level; valid choices: "
                                          r'2, 3, 4, 5, 6, 7$'):
        check_levels('M', 3, 9, range(2, 8))
    check_fields('M', dict(x=FRACTION, y=OrNone(POSITIVE_INT), z=Flag(), w=RATE),
                 dict(x=1.0, y=None, z=False))  # w absent: not checked
    assert issubclass(ConfigError, ValueError)

    def parent(self, a, b=2, *args, c=3, **kwargs):
        pass
    assert bound_arguments(parent, None, 1, c=4, d=5) == dict(self=None, a=1, c=4, d=5)
