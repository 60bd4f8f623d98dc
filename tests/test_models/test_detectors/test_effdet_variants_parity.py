"""Every zoo EfficientDet against rwightman's effdet 0.4.1: D2-D7x (D0 / D1 are in
``test_effdet_parity.py``) and the six EfficientDet-Lite models (``tf_efficientdet_lite*``).

effdet models with random weights, randomised BN statistics and prediction biases are converted
by :mod:`mmdet_spine.converters.effdet` and must give the same class and box outputs on every
level (eval mode, fp32) within 1e-4 -- at a small input (the architecture does not depend on
it), except Lite0 and Lite2, run at their own 320 / 448 px whose top levels round up -- and
the same anchors; the parameter counts of all six Lite models equal effdet's.
"""
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.registry import init_default_scope

from effdet_reference import converter, effdet, randomized_reference
from mmdet_spine.models.detectors import efficientdet_model_cfg

TOL = 1e-4
#: (ty, tx, th, tw) -> (dx, dy, dw, dh) of each of the 9 anchors.
BOX_INDEX = torch.tensor([a * 4 + c for a in range(9) for c in (1, 0, 3, 2)])
#: effdet 0.4.1 parameter counts (90 classes), as its README lists them (M): 3.24 ... 15.1.
LITE_PARAMS = dict(lite0=3_243_470, lite1=4_248_318, lite2=5_252_334, lite3=8_350_862,
                   lite3x=9_280_862, lite4=15_130_894)


def _ours(variant, size):
    init_default_scope('mmdet')
    return MODELS.build(efficientdet_model_cfg(variant, input_size=size)).eval()


def _max_diffs(ref, ours, size, num_levels, seed=3):
    """Largest class / box output differences over the levels (after conversion)."""
    ours.load_state_dict(converter().convert(ref.state_dict()), strict=True)
    ours.eval()
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref_cls, ref_box = ref(x)
        our_cls, our_box = ours.bbox_head(ours.extract_feat(x))
    assert len(our_cls) == len(ref_cls) == num_levels
    cls_diff = box_diff = 0.0
    for rc, rb, oc, ob in zip(ref_cls, ref_box, our_cls, our_box):
        assert oc.shape == rc.shape and ob.shape == rb.shape
        assert rc.std() > 0.05 and rb.std() > 0.05, 'outputs too flat to prove anything'
        cls_diff = max(cls_diff, (oc - rc).abs().max().item())
        box_diff = max(box_diff, (ob - rb[:, BOX_INDEX]).abs().max().item())
    return cls_diff, box_diff


#: Input side of each parity run: the smallest valid one, or the model's own where that is
#: not a multiple of 128 (Lite0: P6 5x5, P7 3x3; Lite2: P7 4x4).
SIZES = dict(d2=128, d3=128, d4=128, d5=128, d6=128, d7x=256, lite0=320, lite1=128,
             lite2=448, lite3=128, lite3x=128, lite4=128)


def _check_parity(variant):
    size = SIZES[variant]
    ref = randomized_reference(f'tf_efficientdet_{variant}', size)
    ours = _ours(variant, size)
    num_levels = ours.bbox_head.num_levels
    cls_diff, box_diff = _max_diffs(ref, ours, size, num_levels)
    print(f'{variant} @{size}: max |diff| class {cls_diff:.2e}, box {box_diff:.2e}')
    assert cls_diff <= TOL and box_diff <= TOL, (cls_diff, box_diff)


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['d2', 'd3', 'd4', 'd5', 'd6', 'd7x'])
def test_parity_with_effdet(variant):
    """(D7 is D6's network with anchor scale 5: the anchors are config, tested in
    ``test_efficientdet.py``.)"""
    _check_parity(variant)


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['lite0', 'lite1', 'lite2', 'lite3', 'lite3x', 'lite4'])
def test_lite_parity_with_effdet(variant):
    _check_parity(variant)


@pytest.mark.slow
def test_lite0_anchors_match_effdet_at_320px():
    """effdet's anchor stride at P7 is 320 / 3 (its ``Anchors``: image size / feature size)."""
    config = effdet().get_efficientdet_config('tf_efficientdet_lite0')  # imports effdet first
    anchors_mod = __import__('effdet.anchors', fromlist=['Anchors'])
    config.image_size = (320, 320)
    ref_anchors = anchors_mod.Anchors.from_config(config).boxes  # (N, 4) yxyx
    head = _ours('lite0', 320).bbox_head
    sizes = [(40, 40), (20, 20), (10, 10), (5, 5), (3, 3)]
    ours = torch.cat(head.prior_generator.grid_priors(sizes, device='cpu'), dim=0)
    torch.testing.assert_close(ours, ref_anchors[:, [1, 0, 3, 2]].float(), atol=1e-3, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize('variant', list(LITE_PARAMS))
def test_lite_parameter_counts_equal_effdets(variant):
    config = effdet().get_efficientdet_config(f'tf_efficientdet_{variant}')
    torch.manual_seed(0)
    ref = effdet().create_model_from_config(config, pretrained=False, pretrained_backbone=False)
    ours = _ours(variant, None)
    n_ref = sum(p.numel() for p in ref.parameters())
    n_ours = sum(p.numel() for p in ours.parameters())
    assert n_ours == n_ref == LITE_PARAMS[variant]
    # and every tensor converts onto ours, name for name and shape for shape
    converted = converter().convert(ref.state_dict())
    assert {k: v.shape for k, v in converted.items()} == {
        k: v.shape for k, v in ours.state_dict().items()}


def test_lite0_anchors_match_effdet_on_a_non_square_input():
    """(H, W) = (320, 384): P7 is 3x3, strides 320 / 3 down and 128 across."""
    from mmdet.registry import TASK_UTILS
    config = effdet().get_efficientdet_config('tf_efficientdet_lite0')  # imports effdet first
    anchors_mod = __import__('effdet.anchors', fromlist=['Anchors'])
    config.image_size = (320, 384)
    ref_anchors = anchors_mod.Anchors.from_config(config).boxes  # (N, 4) yxyx
    init_default_scope('mmdet')
    cfg = efficientdet_model_cfg('lite0', input_size=(320, 384))
    gen = TASK_UTILS.build(cfg.bbox_head.anchor_generator)
    sizes = [(40, 48), (20, 24), (10, 12), (5, 6), (3, 3)]
    ours = torch.cat(gen.grid_priors(sizes, device='cpu'), dim=0)
    torch.testing.assert_close(ours, ref_anchors[:, [1, 0, 3, 2]].float(), atol=1e-3, rtol=0)
