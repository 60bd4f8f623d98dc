"""SpineClassifier, its neck and head: shapes for every backbone, the neck against a hand
computation (the paper's upsample-average-pool and TF's resize indices), parameter counts,
freezing / norm_eval, and one-line errors for bad values."""
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement
from torch.nn.modules.batchnorm import _BatchNorm

import mmdet_spine  # noqa: F401
from mmdet.registry import MODELS
from mmdet_spine.classification import (LinearClassificationHead, PyramidAveragePooling,
                                        SpineClassifier)
from mmdet_spine.errors import ConfigError

SIZE = 64  # P3 8x8 ... P7 1x1


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    init_default_scope('mmdet')
    yield
    torch.set_num_threads(threads)


def _classifier(backbone, num_classes=7, **head):
    return SpineClassifier(
        backbone=backbone,
        head=dict(type='LinearClassificationHead', num_classes=num_classes, **head))


def _params(module):
    return sum(p.numel() for p in module.parameters())


# (backbone config, pooled width)
ARCHS = [
    (dict(type='SpineNet', arch='49S'), 128),
    (dict(type='SpineNet', arch='49'), 256),
    (dict(type='SpineNet', arch='96'), 256),
    (dict(type='SpineNet', arch='143'), 256),
    (dict(type='SpineNet', arch='190'), 512),
    (dict(type='SpineNetMobile', arch='49'), 48),
    (dict(type='SpineNetMobile', arch='49S'), 40),
    (dict(type='SpineNetMobile', arch='49XS'), 24),
    (dict(type='SpineResNet', depth=18, out_indices=(3,)), 512),
    (dict(type='SpineResNet', depth=50, out_indices=(3,)), 2048),
]


@pytest.mark.parametrize('backbone,width', ARCHS,
                         ids=[f"{b['type']}-{b.get('arch', b.get('depth'))}" for b, _ in ARCHS])
def test_forward_shapes_and_parameter_count(backbone, width):
    torch.manual_seed(0)
    model = _classifier(backbone).eval()
    assert model.head.in_channels == width  # taken from the backbone's endpoint width
    x = torch.rand(2, 3, SIZE, SIZE)
    with torch.no_grad():
        feats = model.extract_feat(x)
        logits = model(x)
    assert [tuple(f.shape) for f in feats] == [(2, width)]
    assert tuple(logits.shape) == (2, 7)
    # backbone + (width x classes + classes); the neck has no parameters
    assert _params(model.neck) == 0
    assert _params(model) == _params(model.backbone) + width * 7 + 7


def test_spinenet_49_imagenet_parameters_match_tf_count():
    """TF's trainable SpineNet-49 (21,831,488, references.md) + a 256 x 1000 linear layer;
    tensorflow/tpu MODEL_ZOO.md lists 22.1 M with its 1001 classes (22,088,745)."""
    with torch.device('meta'):
        model = _classifier(dict(type='SpineNet', arch='49'), num_classes=1000)
    assert _params(model.backbone) == 21_831_488
    assert _params(model) == 21_831_488 + 256 * 1000 + 1000


def _nearest_indices(n_in, n_out):
    """TF resize_nearest_neighbor (align_corners=False, half_pixel_centers=False)."""
    return np.minimum(np.floor(np.arange(n_out) * n_in / n_out).astype(int), n_in - 1)


def test_neck_equals_upsample_to_p3_average_and_pool():
    """Levels halving exactly: the neck is the paper's formula, every level resized to P3."""
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, 3, 16 // 2**i, 16 // 2**i, generator=g) for i in range(5)]
    # by hand: repeat each level's pixels 2^i times along both axes, average, pool
    up = [f.repeat_interleave(2**i, dim=2).repeat_interleave(2**i, dim=3)
          for i, f in enumerate(feats)]
    expected_map = torch.stack(up).mean(0)
    neck = PyramidAveragePooling()
    torch.testing.assert_close(neck.aggregate(feats), expected_map, rtol=0, atol=1e-6)
    out, = neck(feats)
    torch.testing.assert_close(out, expected_map.mean(dim=(2, 3)), rtol=0, atol=1e-6)
    assert tuple(out.shape) == (2, 3)


def test_neck_follows_tf_top_down_resizing_at_224():
    """224 px gives P3..P7 of 28, 14, 7, 4, 2: TF resizes top-down (2->4->7->14->28) with
    index floor(dst * in / out); computed here in numpy."""
    g = torch.Generator().manual_seed(1)
    sizes = [28, 14, 7, 4, 2]
    feats = [torch.randn(1, 2, s, s, generator=g) for s in sizes]
    x = feats[-1][0].numpy()
    for f in reversed(feats[:-1]):
        n = f.shape[-1]
        idx = _nearest_indices(x.shape[-1], n)
        x = x[:, idx][:, :, idx] + f[0].numpy()
    expected = x / 5
    got = PyramidAveragePooling().aggregate(feats)[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    # and it differs from resizing each level to P3 directly (so the test can tell)
    direct = sum(f[0].numpy()[:, _nearest_indices(f.shape[-1], 28)][:, :, _nearest_indices(
        f.shape[-1], 28)] for f in feats) / 5
    assert np.abs(direct - expected).max() > 1e-2


def test_neck_top_aggregation_pools_the_coarsest_level():
    feats = [torch.randn(2, 4, 8, 8), torch.randn(2, 6, 4, 4)]
    out, = PyramidAveragePooling(aggregation='top')(feats)
    torch.testing.assert_close(out, feats[-1].mean(dim=(2, 3)))


def test_spine_resnet_with_several_stages():
    """Stage widths differ: averaging them is refused; 'top' pools the last stage."""
    with pytest.raises(ConfigError, match=r"aggregation='all'.*\[64, 128, 256, 512\]"):
        _classifier(dict(type='SpineResNet', depth=18))
    model = SpineClassifier(
        backbone=dict(type='SpineResNet', depth=18),
        neck=dict(type='PyramidAveragePooling', aggregation='top'),
        head=dict(type='LinearClassificationHead', num_classes=3)).eval()
    assert model.head.in_channels == 512
    assert tuple(model(torch.rand(1, 3, SIZE, SIZE)).shape) == (1, 3)


def _bn_stats(module):
    return [m.running_mean.clone() for m in module.modules() if isinstance(m, _BatchNorm)]


@pytest.mark.parametrize('backbone', [
    dict(type='SpineNet', arch='49S', frozen_stages=3, norm_eval=True),
    dict(type='SpineResNet', depth=18, out_indices=(3,), frozen_stages=2, norm_eval=True),
], ids=['SpineNet', 'SpineResNet'])
def test_freezing_and_norm_eval_are_honoured(backbone):
    torch.manual_seed(0)
    model = _classifier(backbone)
    model.train()
    b = model.backbone
    frozen = ([b.stem_conv, b.init_blocks, b.blocks['1'], b.blocks['2']]
              if backbone['type'] == 'SpineNet' else [b.conv1, b.layer1, b.layer2])
    frozen_params = [p for m in frozen for p in m.parameters()]
    assert frozen_params and not any(p.requires_grad for p in frozen_params)
    assert all(not m.training for m in model.backbone.modules() if isinstance(m, _BatchNorm))
    assert model.head.training and all(p.requires_grad for p in model.head.parameters())
    before = _bn_stats(model.backbone)
    samples = [BaseDataElement(gt_label=torch.tensor([i])) for i in range(2)]
    losses = model(torch.rand(2, 3, SIZE, SIZE), samples, mode='loss')
    losses['loss_cls'].backward()
    assert all(p.grad is None for p in frozen_params)
    assert model.head.fc.weight.grad.abs().sum() > 0
    for a, b in zip(before, _bn_stats(model.backbone)):  # norm_eval: statistics untouched
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_loss_and_predict_modes():
    torch.manual_seed(0)
    model = _classifier(dict(type='SpineNet', arch='49S'), num_classes=4, label_smoothing=0.1,
                        topk=(1, 3))
    x = torch.rand(3, 3, SIZE, SIZE)
    samples = [BaseDataElement(gt_label=torch.tensor([i])) for i in (0, 1, 3)]
    model.train()
    losses = model(x, samples, mode='loss')
    assert set(losses) == {'loss_cls', 'acc_top1', 'acc_top3'}
    logits = model.eval()(x)
    assert torch.isfinite(losses['loss_cls']) and 0 < losses['loss_cls'] < 10
    preds = model(x, samples, mode='predict')
    for p, row in zip(preds, logits.softmax(1)):
        torch.testing.assert_close(p.pred_score, row)
        assert int(p.pred_label) == int(row.argmax())
        assert 'gt_label' in p


def test_head_loss_is_label_smoothed_cross_entropy():
    head = LinearClassificationHead(num_classes=5, in_channels=3, label_smoothing=0.2)
    feats = (torch.randn(4, 3),)
    labels = torch.tensor([0, 2, 4, 1])
    logp = head(feats).log_softmax(1)
    target = torch.full((4, 5), 0.2 / 5)
    target[torch.arange(4), labels] += 0.8
    expected = -(target * logp).sum(1).mean()
    torch.testing.assert_close(head.loss(feats, labels)['loss_cls'], expected)


@pytest.mark.parametrize('build,match', [
    (lambda: LinearClassificationHead(num_classes=1, in_channels=8), 'num_classes=1'),
    (lambda: LinearClassificationHead(num_classes=3, in_channels=8, label_smoothing=1.0),
     r'label_smoothing=1.0 must be in \[0, 1\)'),
    (lambda: PyramidAveragePooling(aggregation='max'), "aggregation='max'.*all, top"),
    (lambda: _classifier(dict(type='SpineNet', arch='49S'), in_channels=256),
     'head.in_channels=256 but the neck outputs 128'),
    (lambda: _classifier(dict(type='SpineResNet', depth=18, num_classes=10)),
     'backbone.num_classes=10'),
])
def test_bad_values_raise_config_error(build, match):
    with pytest.raises(ConfigError, match=match):
        build()


def test_registered_in_mmdet_scope():
    model = MODELS.build(dict(
        type='SpineClassifier', backbone=dict(type='SpineNetMobile', arch='49XS'),
        head=dict(type='LinearClassificationHead', num_classes=2)))
    assert isinstance(model, SpineClassifier) and model.head.in_channels == 24
