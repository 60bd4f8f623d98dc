"""EfficientDet D0-D7x and Lite0-4: the scaling table, exact parameter counts, build-time
errors, training."""
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from mmdet_spine.models.detectors import EFFICIENTDET_SCALING, efficientdet_model_cfg
from mmdet_spine.errors import ConfigError
from mmdet_spine.models.detectors.efficientdet_scaling import (INPUT_NORMALIZATIONS,
                                                               anchor_strides,
                                                               efficientdet_coco_pipelines,
                                                               efficientdet_variant, size_divisor)

#: effdet 0.4.1 ``tf_efficientdet_*`` parameter counts with 90 classes.
EFFDET_PARAMS = dict(d0=3_880_067, d1=6_625_898, d2=8_097_039, d3=12_032_296, d4=20_723_675,
                     d5=33_653_315, d6=51_871_782, d7=51_871_782, d7x=77_147_166,
                     lite0=3_243_470, lite1=4_248_318, lite2=5_252_334, lite3=8_350_862,
                     lite3x=9_280_862, lite4=15_130_894)


def build(cfg):
    init_default_scope('mmdet')
    return MODELS.build(cfg)


@pytest.mark.parametrize('variant', list(EFFDET_PARAMS))
def test_parameter_count_equals_effdet(variant):
    model = build(efficientdet_model_cfg(variant, num_classes=90))
    assert sum(p.numel() for p in model.parameters()) == EFFDET_PARAMS[variant]


def test_table_covers_all_variants_and_paper_formulas_up_to_d4():
    assert list(EFFICIENTDET_SCALING) == list(EFFDET_PARAMS)
    for phi in range(5):
        row = EFFICIENTDET_SCALING[f'd{phi}']
        assert row['input_size'] == 512 + 128 * phi
        assert row['bifpn_stages'] == 3 + phi
        assert row['head_convs'] == 3 + phi // 3
        assert row['backbone'] == f'b{phi}'
    # the released D5+ depart from the formulas (the table, not the formula, is the truth)
    assert EFFICIENTDET_SCALING['d5']['bifpn_stages'] == 7
    assert EFFICIENTDET_SCALING['d5']['input_size'] == 1280
    assert EFFICIENTDET_SCALING['d7']['backbone'] == 'b6'
    assert EFFICIENTDET_SCALING['d7']['anchor_scale'] == 5.0
    assert EFFICIENTDET_SCALING['d7x']['levels'] == (3, 8)
    assert {EFFICIENTDET_SCALING[v]['fusion'] for v in ('d6', 'd7', 'd7x')} == {'sum'}


def test_config_follows_table():
    cfg = efficientdet_model_cfg('d7x')
    assert cfg['neck']['num_outs'] == 6 and cfg['bbox_head']['num_levels'] == 6
    assert cfg['bbox_head']['anchor_generator']['strides'][-1] == 256
    assert cfg['data_preprocessor']['pad_size_divisor'] == 256
    assert cfg['neck']['fusion'] == 'sum'
    assert efficientdet_model_cfg('d7')['bbox_head']['anchor_generator']['octave_base_scale'] == 5.0


def test_unknown_variant_names_choices():
    with pytest.raises(KeyError, match=r"variant='d9'.*d0, d1.*d7x"):
        efficientdet_variant('d9')


def test_neck_in_channels_mismatch_names_both():
    cfg = efficientdet_model_cfg('d0', input_size=128)
    cfg['neck']['in_channels'] = [40, 112, 256]
    with pytest.raises(ValueError, match=r'neck.in_channels=\[40, 112, 256\].*'
                                         r'backbone.out_channels=\[40, 112, 320\]'):
        build(cfg)


def test_head_levels_must_match_neck():
    cfg = efficientdet_model_cfg('d0', input_size=128)
    cfg['bbox_head']['num_levels'] = 6
    with pytest.raises(ValueError, match='num_levels=6.*5 levels'):
        build(cfg)


def test_input_size_not_multiple_of_128_names_valid_sizes():
    with pytest.raises(ValueError, match=r'height 500 is not a multiple of 2\*\*7 = 128.*'
                                         r'nearest valid sizes: 384, 512'):
        build(efficientdet_model_cfg('d0', input_size=500))


#: effdet 0.4.1 ``tf_efficientdet_lite*``: (input, backbone, fpn_channels, fpn_cell_repeats,
#: box_class_repeats, anchor_scale, drop_path_rate); all ReLU6, 'bifpn_sum', P3-P7,
#: mean = std = 0.5.
EFFDET_LITE = dict(lite0=(320, 'lite0', 64, 3, 3, 3.0, 0.0),
                   lite1=(384, 'lite1', 88, 4, 3, 3.0, 0.2),
                   lite2=(448, 'lite2', 112, 5, 3, 3.0, 0.2),
                   lite3=(512, 'lite3', 160, 6, 4, 4.0, 0.2),
                   lite3x=(640, 'lite3', 200, 6, 4, 3.0, 0.2),
                   lite4=(640, 'lite4', 224, 7, 4, 4.0, 0.2))


@pytest.mark.parametrize('variant', list(EFFDET_LITE))
def test_lite_rows_are_effdets(variant):
    row = EFFICIENTDET_SCALING[variant]
    assert (row['input_size'], row['backbone'], row['bifpn_channels'], row['bifpn_stages'],
            row['head_convs'], row['anchor_scale'], row['drop_path_rate']) == EFFDET_LITE[variant]
    assert (row['act'], row['fusion'], row['levels'], row['input_norm']) == (
        'ReLU6', 'sum', (3, 7), 'lite')
    cfg = efficientdet_model_cfg(variant)
    assert cfg.backbone.act_cfg == cfg.neck.act_cfg == cfg.bbox_head.act_cfg == dict(
        type='ReLU6')
    assert cfg.data_preprocessor.mean == cfg.data_preprocessor.std == [127.5] * 3
    assert cfg.neck.input_size == (row['input_size'], ) * 2


def test_lite_sizes_that_are_not_multiples_of_128():
    """Lite0 (320) and Lite2 (448): P7 rounds up, anchor stride = input / level size."""
    assert [size_divisor(v) for v in ('lite0', 'lite1', 'lite2', 'd0', 'd7x')] == [
        64, 128, 64, 128, 256]
    strides = anchor_strides((320, 320), 3, 7)
    assert strides[:4] == [8, 16, 32, 64] and strides[4] == pytest.approx(320 / 3)
    assert anchor_strides((448, 448), 3, 7)[4] == 112  # 448 / 4
    assert anchor_strides((512, 512), 3, 7) == [8, 16, 32, 64, 128]
    assert anchor_strides((320, 384), 3, 7)[4] == (128, pytest.approx(320 / 3))  # (w, h)
    cfg = efficientdet_model_cfg('lite0')
    assert cfg.neck.size_divisor == 64 and cfg.data_preprocessor.pad_size_divisor == 64
    assert 'size_divisor' not in efficientdet_model_cfg('d0').neck
    with pytest.raises(ConfigError, match=r'height 500 is not a multiple of size_divisor=64; '
                                          r'nearest valid sizes: 448, 512'):
        build(efficientdet_model_cfg('lite0', input_size=500))


def test_advprop_normalisation_and_padding():
    model = efficientdet_model_cfg('d3', input_norm='advprop')
    assert model.data_preprocessor.mean == model.data_preprocessor.std == [127.5] * 3
    _, test = efficientdet_coco_pipelines('d3', input_norm='advprop')
    pad, = [t for t in test if t['type'] == 'Pad']
    assert pad['pad_val']['img'] == (0.0, 0.0, 0.0) and pad['size'] == (896, 896)
    _, test = efficientdet_coco_pipelines('d3')
    pad, = [t for t in test if t['type'] == 'Pad']
    assert pad['pad_val']['img'] == tuple(INPUT_NORMALIZATIONS['imagenet']['mean'][::-1])
    with pytest.raises(ConfigError, match=r"input_norm='inception' is not an input "
                                          r'normalisation; valid choices: imagenet, lite, '
                                          r'advprop'):
        efficientdet_model_cfg('d0', input_norm='inception')


@pytest.mark.parametrize('kwargs,message', [
    (dict(num_classes=0), r'efficientdet_model_cfg: num_classes=0 must be >= 1'),
    (dict(drop_path_rate=1.5),
     r'efficientdet_model_cfg: drop_path_rate=1\.5 must be in \[0, 1\)'),
    (dict(input_size=-512), r'efficientdet_model_cfg: input_size=-512 must be .*>= 1'),
    (dict(variant='d9'), r"efficientdet_model_cfg: variant='d9' is not an EfficientDet; "
                         r'valid choices: d0, .*lite4'),
])
def test_model_cfg_checks_its_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        efficientdet_model_cfg(**kwargs)


def test_drop_path_rate_out_of_range_fails_the_build():
    cfg = efficientdet_model_cfg('d0', input_size=128)
    cfg.backbone.drop_path_rate = -0.5
    with pytest.raises(ConfigError, match=r'TFEfficientNet: drop_path_rate=-0\.5 must be in '
                                          r'\[0, 1\)'):
        build(cfg)


@pytest.mark.slow
def test_train_step_and_predict_small():
    """A loss + backward at 128 px with 3 classes (batch 2: P7 is 1x1), then soft-NMS inference."""
    torch.manual_seed(0)
    cfg = efficientdet_model_cfg('d0', num_classes=3, input_size=128)
    cfg.test_cfg.update(nms_pre=200, score_thr=0.05)  # untrained scores: keep soft-NMS small
    model = build(cfg)
    model.init_weights()
    samples = []
    for box in ([10., 20., 60., 90.], [30., 30., 120., 100.]):
        sample = DetDataSample(metainfo=dict(img_shape=(128, 128), ori_shape=(128, 128),
                                             pad_shape=(128, 128), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor([box]), labels=torch.tensor([1]))
        samples.append(sample)
    images = [torch.randint(0, 255, (3, 128, 128), dtype=torch.uint8) for _ in samples]
    data = model.data_preprocessor(dict(inputs=images, data_samples=samples), training=True)
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    fusion_w = model.neck.stages[0].nodes[0].fusion.weight
    assert fusion_w.grad is not None and fusion_w.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    assert len(results[0].pred_instances) <= 100
