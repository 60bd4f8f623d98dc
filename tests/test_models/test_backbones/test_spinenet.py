"""SpineNet: TF parameter parity, shapes, graph planning, fusion, drop path, freezing, errors."""
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from mmdet_spine.models.backbones.spinenet import (SPINENET_ARCH_SETTINGS,
                                                   SPINENET_BLOCK_SPECS, BlockSpec, SpineNet)
from mmdet_spine.models.layers import FeatureFusion

# Trainable parameter counts of TF Model Garden's SpineNet (BN gamma/beta, convs without bias).
TF_PARAMS = {'49S': 9_089_215, '49': 21_831_488, '96': 36_262_976, '143': 60_247_616,
             '143L': 100_796_257, '190': 126_587_664}

# A narrow SpineNet-49 that runs in milliseconds.
TINY = dict(arch='49', filter_size_scale=0.125, endpoints_num_filters=8)


def num_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('arch', list(TF_PARAMS))
def test_param_count_matches_tf(arch):
    with torch.device('meta'):
        model = SpineNet(arch=arch)
    assert num_params(model) == TF_PARAMS[arch]


def test_param_count_min_level_2_matches_tf():
    with torch.device('meta'):
        model = SpineNet(arch='49', min_level=2)
    assert num_params(model) == 22_034_688
    assert '16' in model.blocks


def test_arch_table_is_complete():
    assert set(SPINENET_ARCH_SETTINGS) == set(TF_PARAMS)
    assert len(SPINENET_BLOCK_SPECS) == 16 and SPINENET_BLOCK_SPECS[-1].level == 2


def test_spinenet_49s_shapes_128px():
    model = MODELS.build(dict(type='SpineNet', arch='49S')).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 128, 128))
    assert [tuple(o.shape) for o in outs] == [(1, 128, 128 // 2**lv, 128 // 2**lv)
                                              for lv in range(3, 8)]
    assert model.out_channels == [128] * 5


@pytest.mark.parametrize('padding_mode', ['pytorch', 'tf_same'])
def test_tiny_levels_2_to_7_and_odd_input(padding_mode):
    model = SpineNet(min_level=2, padding_mode=padding_mode,
                     act_cfg=dict(type='Swish'), **TINY).eval()
    h, w = 72, 40  # not multiples of 128: sizes are ceil(n / 2**level) like TF 'SAME'
    with torch.no_grad():
        outs = model(torch.rand(1, 3, h, w))
    expect = []
    for lv in range(2, 8):
        eh, ew = h, w
        for _ in range(lv):
            eh, ew = -(-eh // 2), -(-ew // 2)
        expect.append((1, 8, eh, ew))
    assert [tuple(o.shape) for o in outs] == expect


def test_tf_same_padding_changes_outputs_not_params():
    torch.manual_seed(0)
    a = SpineNet(**TINY).eval()
    b = SpineNet(padding_mode='tf_same', **TINY).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(a(x)[0], b(x)[0])


def test_plan_prunes_16th_block_and_merges_unconsumed_blocks():
    model = SpineNet(**TINY)
    assert sorted(model.blocks, key=int) == [str(k) for k in range(1, 16)]
    assert model.plan.kept == [True] * 15 + [False]
    # Spec 10 (node 11, a level-5 bottleneck) is consumed by nobody: TF merges it, as it is,
    # into the next level-5 output (spec 13).
    assert model.plan.merged[12] == (11,)
    assert sum(len(m) for m in model.plan.merged) == 1
    assert isinstance(model.blocks['13'].fusion, FeatureFusion)
    assert model.blocks['13'].fusion.num_inputs == 3
    assert model.plan.endpoints == {3: 13, 4: 12, 5: 14, 6: 16, 7: 15}


def test_legacy_15_specs_build_for_levels_3_to_7():
    with torch.device('meta'):
        model = SpineNet(arch='49', block_specs=SPINENET_BLOCK_SPECS[:15])
    assert num_params(model) == TF_PARAMS['49']


def test_weighted_fusion_one_trainable_scalar_per_parent():
    model = SpineNet(fusion='weighted', **TINY)
    state = model.state_dict()
    total = 0
    for k, block in model.blocks.items():
        i = int(k) - 1
        num_parents = len(model.plan.parents[i]) + len(model.plan.merged[i])
        w = block.fusion.weight
        assert isinstance(w, torch.nn.Parameter) and w.requires_grad
        assert w.shape == (num_parents,)
        assert f'blocks.{k}.fusion.weight' in state
        total += num_parents
    assert total == 2 * 15 + 1
    assert num_params(model) == num_params(SpineNet(**TINY)) + total
    sum(o.sum() for o in model(torch.rand(2, 3, 64, 64))).backward()
    assert model.blocks['13'].fusion.weight.grad is not None
    assert not any('fusion' in k for k in SpineNet(**TINY).state_dict())


def test_drop_path_rates_follow_tf_schedule():
    model = SpineNet(drop_path_rate=0.2, block_repeats=2, **TINY)
    for k, block in model.blocks.items():
        for layer in block.layers:
            assert layer.drop_path.drop_prob == pytest.approx(0.2 * int(k) / 16)
    for group in model.init_blocks:
        for layer in group:
            assert layer.drop_path_rate == 0


def test_drop_path_identity_in_eval():
    torch.manual_seed(0)
    a = SpineNet(drop_path_rate=0.5, **TINY).eval()
    b = SpineNet(**TINY).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        for oa, ob in zip(a(x), b(x)):
            torch.testing.assert_close(oa, ob)


def test_norm_eval_keeps_bn_in_eval():
    model = SpineNet(norm_eval=True, **TINY)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and not any(m.training for m in bns)
    assert model.training and model.blocks['1'].training


def test_frozen_stages():
    model = SpineNet(frozen_stages=3, **TINY)
    model.train()
    frozen = [model.stem_conv, model.init_blocks, model.blocks['1'], model.blocks['2']]
    for m in frozen:
        assert all(not p.requires_grad for p in m.parameters())
        assert all(not b.training for b in m.modules() if isinstance(b, _BatchNorm))
    for m in [model.blocks['3'], model.endpoints]:
        assert all(p.requires_grad for p in m.parameters())
        assert all(b.training for b in m.modules() if isinstance(b, _BatchNorm))
    stem_only = SpineNet(frozen_stages=0, **TINY)
    assert not any(p.requires_grad for p in stem_only.stem_conv.parameters())
    assert all(p.requires_grad for p in stem_only.init_blocks.parameters())


def test_zero_init_residual_and_init_weights():
    model = SpineNet(zero_init_residual=True, **TINY)
    model.init_weights()
    assert torch.count_nonzero(model.blocks['1'].layers[0].bn3.weight) == 0
    assert torch.count_nonzero(model.blocks['2'].layers[0].bn2.weight) == 0
    assert torch.all(model.endpoints['3'].bn.weight == 1)


def test_group_norm_and_syncbn_configs_build():
    model = SpineNet(norm_cfg=dict(type='GN', num_groups=4), **TINY).eval()
    assert 'blocks.1.layers.0.gn1.weight' in model.state_dict()
    with torch.no_grad():
        assert len(model(torch.rand(1, 3, 64, 64))) == 5
    sync = SpineNet(norm_cfg=dict(type='SyncBN'), **TINY)
    assert 'blocks.1.layers.0.bn1.weight' in sync.state_dict()


# ------------------------------------------------------------------------------ errors
def test_unknown_arch_lists_valid_ones():
    with pytest.raises(ValueError, match=r"arch='50'.*49S, 49, 96, 143, 143L, 190"):
        SpineNet(arch='50')


def test_forward_offset_names_block():
    specs = list(SPINENET_BLOCK_SPECS)
    specs[3] = BlockSpec(4, 'bottleneck', (2, 7), False)
    with pytest.raises(ValueError, match=r'block_specs\[3\].*input_offsets=\(2, 7\).*backward'):
        SpineNet(block_specs=specs, **TINY)
    specs[3] = (4, 'bottleneck', (-1, 2), False)
    with pytest.raises(ValueError, match=r'block_specs\[3\].*input_offsets=\(-1, 2\)'):
        SpineNet(block_specs=specs, **TINY)


def test_duplicate_output_level_names_block():
    specs = list(SPINENET_BLOCK_SPECS)
    specs[9] = BlockSpec(5, 'bottleneck', (8, 10), True)
    with pytest.raises(ValueError, match=r'block_specs\[12\]: duplicate output level 5 '
                                         r'\(block_specs\[9\]'):
        SpineNet(block_specs=specs, **TINY)


def test_consumed_output_outside_levels_names_block():
    specs = list(SPINENET_BLOCK_SPECS[:15])
    specs[0] = BlockSpec(2, 'bottleneck', (0, 1), True)  # a level-2 output feeding others
    with pytest.raises(ValueError, match=r'block_specs\[0\]: output level 2 is outside '
                                         r'min_level..max_level=3..7'):
        SpineNet(block_specs=specs, **TINY)


def test_min_level_2_without_level_2_output():
    with pytest.raises(ValueError, match=r'min_level=2.*no output block at level 2'):
        SpineNet(min_level=2, block_specs=SPINENET_BLOCK_SPECS[:15], **TINY)
    with pytest.raises(ValueError, match=r'min_level=5 must be <= max_level=4'):
        SpineNet(min_level=5, max_level=4, **TINY)
    with pytest.raises(ValueError, match=r'max_level=8 is not a SpineNet level'):
        SpineNet(max_level=8, **TINY)


@pytest.mark.parametrize('kwargs, match', [
    (dict(fusion='mean'), r"fusion='mean'.*sum, weighted, softmax"),
    (dict(padding_mode='same'), r"padding_mode='same'.*pytorch, tf_same"),
    (dict(frozen_stages=20), r'frozen_stages=20 must be in -1..17'),
    (dict(drop_path_rate=1.0), r'drop_path_rate=1.0'),
    (dict(block_specs=[(9, 'bottleneck', (0, 1), True)]), r'block_specs\[0\]: level=9'),
    (dict(block_specs=[(3, 'mbconv', (0, 1), True)]),
     r"block_specs\[0\]: block_fn='mbconv'.*residual, bottleneck"),
    (dict(block_specs=[(3, 'bottleneck', (0, 1))]), r'block_specs\[0\]=.*not a block spec'),
])
def test_bad_arguments(kwargs, match):
    args = dict(TINY, **kwargs)
    with pytest.raises(ValueError, match=match):
        SpineNet(**args)
