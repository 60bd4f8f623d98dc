"""EfficientDet D0-D7x: the scaling table, exact parameter counts, build-time errors, training."""
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from mmdet_spine.models.detectors import EFFICIENTDET_SCALING, efficientdet_model_cfg
from mmdet_spine.models.detectors.efficientdet_scaling import efficientdet_variant

#: effdet 0.4.1 ``tf_efficientdet_*`` parameter counts with 90 classes.
EFFDET_PARAMS = dict(d0=3_880_067, d1=6_625_898, d2=8_097_039, d3=12_032_296, d4=20_723_675,
                     d5=33_653_315, d6=51_871_782, d7=51_871_782, d7x=77_147_166)


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
