"""Numerical parity with rwightman's effdet 0.4.1 (the reference PyTorch EfficientDet).

effdet models with random weights, randomised BN statistics and fusion weights are converted by
``tools/model_converters/effdet2mmdet.py`` and must give the same class and box outputs on every
level (eval mode, fp32) within 1e-4.
"""
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.registry import init_default_scope

from effdet_reference import converter, randomized_reference
from mmdet_spine.models.detectors import efficientdet_model_cfg

SIZE = 256
TOL = 1e-4
#: (ty, tx, th, tw) -> (dx, dy, dw, dh) of each of the 9 anchors.
BOX_INDEX = torch.tensor([a * 4 + c for a in range(9) for c in (1, 0, 3, 2)])


def _ours(variant, **cfg_overrides):
    init_default_scope('mmdet')
    cfg = efficientdet_model_cfg(variant, input_size=SIZE, **cfg_overrides)
    return cfg, MODELS.build(cfg)


def _outputs(ref, ours, seed=3):
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref_cls, ref_box = ref(x)
        our_cls, our_box = ours.bbox_head(ours.extract_feat(x))
    return ref_cls, ref_box, our_cls, our_box


def _assert_parity(ref, ours, num_levels):
    ours.load_state_dict(converter().convert(ref.state_dict()), strict=True)
    ours.eval()
    ref_cls, ref_box, our_cls, our_box = _outputs(ref, ours)
    assert len(our_cls) == len(ref_cls) == num_levels
    for level, (rc, rb, oc, ob) in enumerate(zip(ref_cls, ref_box, our_cls, our_box)):
        assert oc.shape == rc.shape and ob.shape == rb.shape
        assert rc.std() > 0.05 and rb.std() > 0.05, 'outputs too flat to prove anything'
        cls_diff = (oc - rc).abs().max().item()
        box_diff = (ob - rb[:, BOX_INDEX]).abs().max().item()
        assert cls_diff <= TOL, f'level {level}: class max abs diff {cls_diff}'
        assert box_diff <= TOL, f'level {level}: box max abs diff {box_diff}'


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['d0', 'd1'])
def test_parity_with_effdet(variant):
    ref = randomized_reference(f'tf_efficientdet_{variant}', SIZE)
    _, ours = _ours(variant)
    _assert_parity(ref, ours, num_levels=5)


@pytest.mark.slow
def test_parity_six_levels_sum_fusion():
    """D7x's P3-P8 pyramid and D6+'s unweighted fusion, on a D0-sized network."""
    ref = randomized_reference('tf_efficientdet_d0', SIZE, max_level=8, num_levels=6,
                               fpn_name='bifpn_sum')
    init_default_scope('mmdet')
    cfg = efficientdet_model_cfg('d0', input_size=SIZE)
    cfg['neck'].update(num_outs=6, fusion='sum')
    cfg['bbox_head']['num_levels'] = 6
    cfg['bbox_head']['anchor_generator']['strides'] = [8, 16, 32, 64, 128, 256]
    ours = MODELS.build(cfg)
    _assert_parity(ref, ours, num_levels=6)


@pytest.mark.slow
def test_coco80_conversion_keeps_the_80_existing_ids():
    ref = randomized_reference('tf_efficientdet_d0', SIZE)
    conv = converter()
    _, ours = _ours('d0', num_classes=80)
    ours.load_state_dict(conv.convert(ref.state_dict(), num_classes=80), strict=True)
    ours.eval()
    ref_cls, _, our_cls, _ = _outputs(ref, ours)
    keep = torch.tensor([a * 90 + i - 1 for a in range(9) for i in conv.COCO80_CATEGORY_IDS])
    assert len(conv.COCO80_CATEGORY_IDS) == 80
    for rc, oc in zip(ref_cls, our_cls):
        assert (oc - rc[:, keep]).abs().max().item() <= TOL
    with pytest.raises(ValueError, match='num_classes=81'):
        conv.convert(ref.state_dict(), num_classes=81)


@pytest.mark.slow
def test_tf_same_padding_is_what_makes_parity():
    """With PyTorch's symmetric padding the same weights drift past the tolerance."""
    ref = randomized_reference('tf_efficientdet_d0', SIZE)
    _, ours = _ours('d0', tf_same_padding=False)
    ours.load_state_dict(converter().convert(ref.state_dict()), strict=True)
    ours.eval()
    ref_cls, _, our_cls, _ = _outputs(ref, ours)
    assert max((o - r).abs().max().item() for o, r in zip(our_cls, ref_cls)) > 2 * TOL


@pytest.mark.slow
def test_anchors_and_box_decoding_match_effdet():
    """Our anchors equal effdet's (yxyx -> xyxy) and the box coder decodes identically."""
    from effdet_reference import effdet
    ref = randomized_reference('tf_efficientdet_d0', SIZE)
    anchors_mod = __import__('effdet.anchors', fromlist=['Anchors'])
    ref_anchors = anchors_mod.Anchors.from_config(ref.config).boxes  # (N, 4) yxyx
    _, ours = _ours('d0')
    head = ours.bbox_head
    sizes = [(SIZE // s, SIZE // s) for s in (8, 16, 32, 64, 128)]
    our_anchors = torch.cat(head.prior_generator.grid_priors(sizes, device='cpu'), dim=0)
    torch.testing.assert_close(our_anchors, ref_anchors[:, [1, 0, 3, 2]].float(), atol=1e-3,
                               rtol=0)
    # |dw|, |dh| kept below mmdet's clamp (log(1000 / 16) = 4.1); effdet does not clamp
    deltas_tyx = torch.randn(our_anchors.shape[0], 4,
                             generator=torch.Generator().manual_seed(0)).clamp(-4, 4)
    ref_boxes = anchors_mod.decode_box_outputs(deltas_tyx, ref_anchors, output_xyxy=True)
    our_boxes = head.bbox_coder.decode(our_anchors, deltas_tyx[:, [1, 0, 3, 2]],
                                       max_shape=None)
    torch.testing.assert_close(our_boxes, ref_boxes, atol=1e-3, rtol=1e-5)
    assert effdet() is not None
