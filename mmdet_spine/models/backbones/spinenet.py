"""SpineNet: a scale-permuted backbone found by architecture search.

Du et al., "SpineNet: Learning Scale-Permuted Backbone for Recognition and Localization",
CVPR 2020, https://arxiv.org/abs/1912.05027.

The architecture is data: :data:`SPINENET_BLOCK_SPECS` lists the scale-permuted blocks,
:data:`SPINENET_ARCH_SETTINGS` the per-model scaling and :data:`SPINENET_FILTER_SIZES` the block
width per level. :class:`SpineNet` walks the specs once, plans the graph in plain Python
(:func:`plan_scale_permuted_network`: parents, merges of unconsumed blocks, pruning of blocks
no requested output depends on) and then builds modules for it.
"""
import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule, ModuleDict, ModuleList, Sequential

from mmdet.registry import MODELS
from mmdet_spine.errors import ConfigError

from ..layers.config_checks import (FLAG, POSITIVE, POSITIVE_INT, RATE, check_act_cfg,
                                    check_choice, check_fields, check_levels, check_norm_cfg)
from ..layers.cross_scale_resample import (CrossScaleResample, check_padding_mode,
                                           strided_max_pool)
from ..layers.fusion import FeatureFusion, check_fusion_method
from ..layers.residual_blocks import build_act, get_residual_block
from ..layers.tf_padding import TFSamePad2d
from ..utils.freezing import FreezeMixin


class BlockSpec(NamedTuple):
    """One scale-permuted block: its level, block type, parents and whether it is an output.

    ``input_offsets`` index the list of nodes built so far: 0 and 1 are the two stem blocks,
    ``k + 2`` is the block of spec ``k`` (0-based).
    """
    level: int
    block_fn: str
    input_offsets: Tuple[int, ...]
    is_output: bool


#: The SpineNet-49 block specs found by NAS (paper Fig. 4; TF Model Garden ``official/vision``).
#: The 16th spec, a level-2 output, is only built when ``min_level == 2``: no level >= 3
#: output depends on it, so it is pruned otherwise (the legacy TF version has 15 specs).
SPINENET_BLOCK_SPECS: List[BlockSpec] = [
    BlockSpec(2, 'bottleneck', (0, 1), False),
    BlockSpec(4, 'residual', (0, 1), False),
    BlockSpec(3, 'bottleneck', (2, 3), False),
    BlockSpec(4, 'bottleneck', (2, 4), False),
    BlockSpec(6, 'residual', (3, 5), False),
    BlockSpec(4, 'bottleneck', (3, 5), False),
    BlockSpec(5, 'residual', (6, 7), False),
    BlockSpec(7, 'residual', (6, 8), False),
    BlockSpec(5, 'bottleneck', (8, 9), False),
    BlockSpec(5, 'bottleneck', (8, 10), False),
    BlockSpec(4, 'bottleneck', (5, 10), True),
    BlockSpec(3, 'bottleneck', (4, 10), True),
    BlockSpec(5, 'bottleneck', (7, 12), True),
    BlockSpec(7, 'bottleneck', (5, 14), True),
    BlockSpec(6, 'bottleneck', (12, 14), True),
    BlockSpec(2, 'bottleneck', (2, 13), True),
]

#: Block width per level before ``filter_size_scale`` (a bottleneck outputs 4x this).
SPINENET_FILTER_SIZES: Dict[int, int] = {1: 32, 2: 64, 3: 128, 4: 256, 5: 256, 6: 256, 7: 256}

#: Scaling of each SpineNet model (TF Model Garden ``SCALING_MAP``).
SPINENET_ARCH_SETTINGS: Dict[str, Dict] = {
    '49S': dict(endpoints_num_filters=128, filter_size_scale=0.65, resample_alpha=0.5,
                block_repeats=1),
    '49': dict(endpoints_num_filters=256, filter_size_scale=1.0, resample_alpha=0.5,
               block_repeats=1),
    '96': dict(endpoints_num_filters=256, filter_size_scale=1.0, resample_alpha=0.5,
               block_repeats=2),
    '143': dict(endpoints_num_filters=256, filter_size_scale=1.0, resample_alpha=1.0,
                block_repeats=3),
    '143L': dict(endpoints_num_filters=256, filter_size_scale=1.3, resample_alpha=1.0,
                 block_repeats=3),
    '190': dict(endpoints_num_filters=512, filter_size_scale=1.3, resample_alpha=1.0,
                block_repeats=4),
}


def _prefix(owner: str) -> str:
    return f'{owner}: ' if owner else ''


def to_block_specs(specs: Sequence, field: str = 'block_specs',
                   owner: str = '') -> List[BlockSpec]:
    """Normalise tuples / lists / dicts / :class:`BlockSpec` into a list of BlockSpec.

    Raises:
        ConfigError: naming the spec that is not ``(level, block_fn, input_offsets,
            is_output)`` (``owner`` prefixes the message).
    """
    if not isinstance(specs, (list, tuple)) or not specs:
        raise ConfigError(f'{_prefix(owner)}{field}={specs!r} must be a non-empty list of '
                          '(level, block_fn, input_offsets, is_output) specs')
    out = []
    for i, s in enumerate(specs):
        try:
            if isinstance(s, dict):
                s = BlockSpec(**s)
            else:
                s = BlockSpec(*s)
            offsets = tuple(int(o) for o in s.input_offsets)
            level = int(s.level)
        except (TypeError, ValueError) as e:
            raise ConfigError(f'{_prefix(owner)}{field}[{i}]={s!r} is not a block spec (level, '
                              f'block_fn, input_offsets, is_output): {e}') from None
        out.append(BlockSpec(level, str(s.block_fn), offsets, bool(s.is_output)))
    return out


class NetworkPlan(NamedTuple):
    """The wiring of a scale-permuted network, computed before any module exists.

    Node ``n`` is stem block ``n`` for ``n < num_init`` and spec ``n - num_init`` otherwise.
    """
    num_init: int
    levels: List[int]  # per node
    channels: List[int]  # per node
    parents: List[Tuple[int, ...]]  # per spec: resampled parents (the input offsets)
    merged: List[Tuple[int, ...]]  # per spec: unconsumed same-shape nodes added as they are
    kept: List[bool]  # per spec: False when no requested output depends on it
    endpoints: Dict[int, int]  # requested level -> node


def plan_scale_permuted_network(block_specs: Sequence[BlockSpec], init_levels: Sequence[int],
                                init_channels: Sequence[int], spec_channels: Sequence[int],
                                min_level: int, max_level: int,
                                field: str = 'block_specs', owner: str = '') -> NetworkPlan:
    """Wire the specs as TF Model Garden does and validate them.

    - Each spec reads its ``input_offsets`` (resampled to its level and width).
    - An output spec also takes, unresampled, every earlier node that nothing has consumed
      yet and that has its level and channels (TF: "merge 0-outdegree blocks").
    - Specs that no output in ``[min_level, max_level]`` depends on are pruned (Keras drops
      such layers from the TF model; this is how the 16th spec disappears for min_level 3).

    Raises:
        ConfigError: naming the spec index for offsets pointing forward / out of range,
            duplicate output levels and kept output blocks outside ``[min_level, max_level]``;
            naming the level for requested levels without an output block (``owner``, e.g.
            ``'SpineNet'``, prefixes the message).
    """
    pre = _prefix(owner)
    num_init = len(init_levels)
    levels, channels = list(init_levels), list(init_channels)
    out_degree = [0] * num_init
    parents, merged, outputs = [], [], {}
    if min_level > max_level:
        raise ConfigError(f'{pre}min_level={min_level} must be <= max_level={max_level}')
    for i, spec in enumerate(block_specs):
        node = num_init + i
        if len(spec.input_offsets) < 1:
            raise ConfigError(f'{pre}{field}[{i}]: input_offsets={spec.input_offsets} is '
                              'empty; a block needs at least one parent')
        for o in spec.input_offsets:
            if not 0 <= o < node:
                raise ConfigError(
                    f'{pre}{field}[{i}]: input_offsets={spec.input_offsets} has {o}, but block '
                    f'{i} can only read nodes 0..{node - 1} (0..{num_init - 1} are the stem '
                    f'blocks, node k + {num_init} is {field}[k]); offsets must point backward')
        for o in spec.input_offsets:
            out_degree[o] += 1
        extra = []
        if spec.is_output:
            for j in range(node):
                if (out_degree[j] == 0 and levels[j] == spec.level
                        and channels[j] == spec_channels[i]):
                    extra.append(j)
                    out_degree[j] += 1
            if spec.level in outputs:
                raise ConfigError(
                    f'{pre}{field}[{i}]: duplicate output level {spec.level} '
                    f'({field}[{outputs[spec.level] - num_init}] is already an output at '
                    f'level {spec.level}); output levels must be unique')
            outputs[spec.level] = node
        parents.append(tuple(spec.input_offsets))
        merged.append(tuple(extra))
        levels.append(spec.level)
        channels.append(spec_channels[i])
        out_degree.append(0)

    endpoints = {}
    for level in range(min_level, max_level + 1):
        if level not in outputs:
            have = ', '.join(str(lv) for lv in sorted(outputs)) or 'none'
            raise ConfigError(
                f'{pre}min_level={min_level}, max_level={max_level}: {field} has no output block '
                f'at level {level} (output levels: {have}); choose levels within the outputs '
                f'or add an output spec at level {level}')
        endpoints[level] = outputs[level]

    needed = set(endpoints.values())
    for node in range(len(levels) - 1, num_init - 1, -1):
        if node in needed:
            i = node - num_init
            needed.update(parents[i])
            needed.update(merged[i])
    kept = [num_init + i in needed for i in range(len(block_specs))]
    for i, spec in enumerate(block_specs):
        if kept[i] and spec.is_output and not min_level <= spec.level <= max_level:
            raise ConfigError(
                f'{pre}{field}[{i}]: output level {spec.level} is outside '
                f'min_level..max_level={min_level}..{max_level} but later blocks consume it; '
                f'set its is_output to False or widen the levels')
    return NetworkPlan(num_init, levels, channels, parents, merged, kept, endpoints)


class ScalePermutedBlock(BaseModule):
    """One SpineNet node: resample each parent, fuse, activate, then a group of blocks.

    Not registered; built by :class:`SpineNet`. Children: ``resample`` (one
    :class:`CrossScaleResample` per input offset), ``fusion`` (:class:`FeatureFusion` over
    resampled parents plus merged unconsumed blocks), ``act`` and ``layers`` (the blocks).
    """

    def __init__(self, resample: List[nn.Module], fusion: FeatureFusion, act: nn.Module,
                 layers: nn.Module, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.resample = ModuleList(resample)
        self.fusion = fusion
        self.act = act
        self.layers = layers

    def forward(self, parents: Sequence[torch.Tensor], merged: Sequence[torch.Tensor],
                out_size) -> torch.Tensor:
        inputs = [r(p, out_size) for r, p in zip(self.resample, parents)] + list(merged)
        return self.layers(self.act(self.fusion(inputs)))


def _level_size(base_hw, base_level: int, level: int) -> Tuple[int, int]:
    """Spatial size at ``level`` given the size at ``base_level`` (ceil per halving, as every
    stride-2 conv / pool here produces, both with symmetric and with TF 'SAME' padding)."""
    h, w = int(base_hw[0]), int(base_hw[1])
    for _ in range(level - base_level):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    return h, w


@MODELS.register_module()
class SpineNet(FreezeMixin, BaseModule):
    """SpineNet backbone: scale-permuted residual blocks with cross-scale connections.

    From Du et al., "SpineNet: Learning Scale-Permuted Backbone for Recognition and
    Localization", CVPR 2020 (https://arxiv.org/abs/1912.05027). Parameter counts equal TF
    Model Garden's trainable counts (e.g. SpineNet-49: 21,831,488 with levels 3-7).

    Structure (module names in brackets, made for a TF checkpoint converter): a 7x7/2 conv
    to 64 channels (``stem_channels``) + norm + act (``stem_conv``) and a 3x3/2 max-pool
    (``stem_pool``); two level-2 bottleneck groups (``init_blocks.0/1``); one
    :class:`ScalePermutedBlock` per kept spec (``blocks.<k>`` with ``k`` the 1-based spec
    index, as TF's ``scale_permuted_block_<k>``); a 1x1 conv + norm + act per output level
    (``endpoints.<level>``).

    Args:
        arch (str): One of :data:`SPINENET_ARCH_SETTINGS`: '49S', '49', '96', '143',
            '143L', '190'. Default: '49'.
        in_channels (int): Input image channels, >= 1. Default: 3.
        stem_channels (int): Output channels of the 7x7 stem conv, >= 1. The paper and TF
            keep 64 at every width; a narrow model for small inputs can shrink it (at 256 px
            the 64-channel stem conv is 16 % of a 0.35-width SpineNet-49S RetinaNet's
            FLOPs). Default: 64.
        min_level (int): Lowest output level, one of :data:`SPINENET_FILTER_SIZES`' levels
            with an output block (2 only with the 16th spec), <= ``max_level``. Default: 3.
        max_level (int): Highest output level, <= 7. Default: 7.
        block_specs (list, optional): Replaces :data:`SPINENET_BLOCK_SPECS`; items are
            ``(level, block_fn, input_offsets, is_output)`` tuples, dicts or BlockSpec.
        endpoints_num_filters (int, optional): Overrides the arch's output width (>= 1).
        filter_size_scale (float, optional): Overrides the arch's width multiplier (> 0, and
            large enough that every level keeps at least one filter).
        resample_alpha (float, optional): Overrides the arch's resampling width factor (> 0,
            and large enough that every resampling keeps at least one channel).
        block_repeats (int, optional): Overrides the arch's blocks per node (>= 1).
        fusion (str): Merging of a node's parents: 'sum' (paper), 'weighted' (TF legacy
            weighted fusion, one learned scalar per parent) or 'softmax'. Default: 'sum'.
        drop_path_rate (float): Stochastic depth, in [0, 1): the block of spec ``i``
            (1-based) of ``N`` specs drops its residual branch with probability
            ``rate * i / N``; all repeats of a node share it; stem blocks never drop.
            Default: 0.
        conv_cfg (dict, optional): Conv layer config. Default: None.
        norm_cfg (dict): Norm config. Default: BN with TF's momentum 0.99 (PyTorch
            ``momentum=0.01``) and eps 1e-3.
        act_cfg (dict): Activation, e.g. ``dict(type='SiLU')`` (swish) for the COCO recipe.
            Default: dict(type='ReLU').
        padding_mode (str): 'pytorch' (symmetric) or 'tf_same' (TF 'SAME' padding of the
            stride-2 convs and pools; for TF-trained weights), or 'tf_tpu' (tensorflow/tpu's
            TF1 SpineNet, for its legacy checkpoints: symmetric conv padding, TF 'SAME' pools;
            see :class:`CrossScaleResample`). Default: 'pytorch'.
        norm_eval (bool): Keep all BatchNorm layers in eval mode while training.
            Default: False.
        frozen_stages (int): In ``-1..len(block_specs) + 1``. -1 freezes nothing; 0 the
            stem conv (``stem_conv``); 1 also the two level-2 stem block groups
            (``init_blocks``); ``n >= 2`` also the nodes of specs ``1..n-1`` (``blocks.1`` to
            ``blocks.<n-1>``: their resampling, fusion and blocks, in spec order; pruned
            specs count but have nothing to freeze). That is mmdet's convention with the
            stem block groups as stage 1 and spec ``k`` as stage ``k + 1``. Endpoint convs
            are never frozen. Frozen parts have ``requires_grad=False`` and stay in eval
            mode (:class:`~mmdet_spine.models.utils.freezing.FreezeMixin`). Default: -1.
        zero_init_residual (bool): Zero-init the last norm of every residual branch.
            Default: False.
        with_cp (bool): Gradient checkpointing inside the blocks. Default: False.
        init_cfg (dict | list[dict], optional): Initialisation config. Default: Kaiming
            for convs, constant 1 for norms.

    Example:
        >>> model = SpineNet(arch='49S').eval()
        >>> [tuple(o.shape) for o in model(torch.rand(1, 3, 128, 128))]
        [(1, 128, 16, 16), (1, 128, 8, 8), (1, 128, 4, 4), (1, 128, 2, 2), (1, 128, 1, 1)]
    """

    arch_settings = SPINENET_ARCH_SETTINGS
    default_block_specs = SPINENET_BLOCK_SPECS
    filter_sizes = SPINENET_FILTER_SIZES
    #: Block types a spec may name.
    block_fns = ('residual', 'bottleneck')
    #: Levels of the stem blocks (their widths come from ``filter_sizes`` too).
    stem_levels = (2,)
    #: Valid range of each numeric argument (checked at build time).
    arg_rules = dict(in_channels=POSITIVE_INT, stem_channels=POSITIVE_INT,
                     endpoints_num_filters=POSITIVE_INT,
                     filter_size_scale=POSITIVE, resample_alpha=POSITIVE,
                     block_repeats=POSITIVE_INT, drop_path_rate=RATE, norm_eval=FLAG,
                     zero_init_residual=FLAG, with_cp=FLAG)
    _display_name = 'SpineNet'

    def __init__(self, arch: str = '49', in_channels: int = 3, min_level: int = 3,
                 max_level: int = 7, block_specs: Optional[Sequence] = None,
                 endpoints_num_filters: Optional[int] = None,
                 filter_size_scale: Optional[float] = None,
                 resample_alpha: Optional[float] = None, block_repeats: Optional[int] = None,
                 fusion: str = 'sum', drop_path_rate: float = 0.,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN', momentum=0.01, eps=1e-3, requires_grad=True),
                 act_cfg: Dict = dict(type='ReLU'), padding_mode: str = 'pytorch',
                 norm_eval: bool = False, frozen_stages: int = -1,
                 zero_init_residual: bool = False, with_cp: bool = False,
                 init_cfg=[dict(type='Kaiming', layer='Conv2d'),
                           dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])],
                 stem_channels: int = 64):
        super().__init__(init_cfg=init_cfg)
        name = self._display_name
        check_choice(name, 'arch', arch, tuple(self.arch_settings), f'a {name} architecture')
        check_norm_cfg(norm_cfg, name)
        check_act_cfg(act_cfg, name)
        settings = dict(self.arch_settings[arch])
        overrides = dict(endpoints_num_filters=endpoints_num_filters,
                         filter_size_scale=filter_size_scale, resample_alpha=resample_alpha,
                         block_repeats=block_repeats)
        settings.update({k: v for k, v in overrides.items() if v is not None})
        check_fields(name, self.arg_rules, dict(
            settings, in_channels=in_channels, stem_channels=stem_channels,
            drop_path_rate=drop_path_rate,
            norm_eval=norm_eval, zero_init_residual=zero_init_residual, with_cp=with_cp))
        check_levels(name, min_level, max_level, self.filter_sizes)
        self.arch = arch
        self.stem_channels = stem_channels
        self.settings = settings
        self.min_level, self.max_level = min_level, max_level
        self.fusion_method = check_fusion_method(fusion, owner=name)
        self.padding_mode = check_padding_mode(padding_mode, owner=name)
        self.drop_path_rate = drop_path_rate
        self.conv_cfg, self.norm_cfg, self.act_cfg = conv_cfg, norm_cfg, act_cfg
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual
        self.with_cp = with_cp
        self.block_specs = self._adjust_specs(to_block_specs(
            self.default_block_specs if block_specs is None else block_specs, owner=name))
        level_choice = f'a {name} level'
        for i, spec in enumerate(self.block_specs):
            check_choice(name, f'block_specs[{i}]: level', spec.level, tuple(self.filter_sizes),
                         level_choice)
            check_choice(name, f'block_specs[{i}]: block_fn', spec.block_fn, self.block_fns,
                         f'a {name} block')
        self._check_widths({*self.stem_levels, *(s.level for s in self.block_specs)})
        self.frozen_stages = frozen_stages
        self._check_freezing(name, len(self.block_specs) + 1,
                             '0: stem conv, 1: + stem blocks, n: + specs 1..n-1')

        init_levels, init_channels = self._make_stem(in_channels)
        spec_channels = [self._block_out_channels(s.level, s.block_fn) for s in self.block_specs]
        self.plan = plan_scale_permuted_network(self.block_specs, init_levels, init_channels,
                                                spec_channels, min_level, max_level, owner=name)
        num_specs = len(self.block_specs)

        self.blocks = ModuleDict()
        for i, spec in enumerate(self.block_specs):
            if not self.plan.kept[i]:
                continue
            resample = [self._make_resample(p, spec.level, spec.block_fn)
                        for p in self.plan.parents[i]]
            num_inputs = len(self.plan.parents[i]) + len(self.plan.merged[i])
            layers = self._make_block_group(spec.block_fn, spec.level,
                                            self.drop_path_rate * (i + 1) / num_specs)
            self.blocks[str(i + 1)] = ScalePermutedBlock(
                resample, FeatureFusion(num_inputs, self.fusion_method), build_act(act_cfg),
                layers)
        self.endpoints = ModuleDict()
        width = settings['endpoints_num_filters']
        for level, node in self.plan.endpoints.items():
            self.endpoints[str(level)] = ConvModule(
                self.plan.channels[node], width, 1, bias=False, conv_cfg=conv_cfg,
                norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.out_channels = [width] * len(self.plan.endpoints)
        self._freeze_stages()

    # ----------------------------------------------------------------- builder hooks
    def _adjust_specs(self, specs: List[BlockSpec]) -> List[BlockSpec]:
        return specs

    def _filters(self, level: int) -> int:
        return int(self.filter_sizes[level] * self.settings['filter_size_scale'])

    def _check_widths(self, levels) -> None:
        """Every level in use keeps at least one filter after ``filter_size_scale``."""
        scale = self.settings['filter_size_scale']
        level = min(levels, key=lambda lv: self.filter_sizes[lv])
        if self._filters(level) < 1:
            raise ConfigError(
                f'{self._display_name}: filter_size_scale={scale!r} must be >= '
                f'{1 / self.filter_sizes[level]:.4g} (it gives int({self.filter_sizes[level]} '
                f'x {scale!r}) = 0 filters at level {level})')

    def _block_out_channels(self, level: int, block_fn: str) -> int:
        return self._filters(level) * get_residual_block(block_fn).expansion

    def _make_block_group(self, block_fn: str, level: int, drop_path_rate: float,
                          in_channels: Optional[int] = None) -> Sequential:
        """``block_repeats`` blocks; the first projects when the width differs."""
        block = get_residual_block(block_fn)
        planes = self._filters(level)
        out_channels = planes * block.expansion
        in_channels = out_channels if in_channels is None else in_channels
        layers = []
        for r in range(self.settings['block_repeats']):
            layers.append(block(
                in_channels if r == 0 else out_channels, planes,
                drop_path_rate=drop_path_rate, zero_init_residual=self.zero_init_residual,
                with_cp=self.with_cp, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg))
        return Sequential(*layers)

    def _make_resample(self, parent: int, level: int, block_fn: str) -> nn.Module:
        plan = self.plan
        parent_channels = plan.channels[parent]
        parent_fn = (self.block_specs[parent - plan.num_init].block_fn
                     if parent >= plan.num_init else 'bottleneck')
        parent_width = parent_channels / get_residual_block(parent_fn).expansion
        alpha = self.settings['resample_alpha']
        mid = int(parent_width * alpha)
        if mid < 1:
            raise ConfigError(
                f'{self._display_name}: resample_alpha={alpha!r} must be >= '
                f'{1 / parent_width:.4g} (it gives int({parent_width:g} x {alpha!r}) = 0 '
                f'channels when resampling a level-{plan.levels[parent]} block)')
        return CrossScaleResample(
            parent_channels, mid, self._block_out_channels(level, block_fn),
            in_level=plan.levels[parent], out_level=level, conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg, act_cfg=self.act_cfg, padding_mode=self.padding_mode)

    def _make_stem(self, in_channels: int):
        """Build the stem; return the levels and channels of the stem blocks' outputs."""
        tf_same = self.padding_mode == 'tf_same'
        self.stem_pad = TFSamePad2d(7, 2) if tf_same else nn.Identity()
        self.stem_conv = ConvModule(in_channels, self.stem_channels, 7, stride=2,
                                    padding=0 if tf_same else 3, bias=False, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                    act_cfg=self.act_cfg)
        self.stem_pool = strided_max_pool(self.padding_mode)
        self.init_blocks = ModuleList()
        in_ch = self.stem_channels
        for _ in range(2):
            group = self._make_block_group('bottleneck', 2, 0., in_channels=in_ch)
            in_ch = group[-1].out_channels
            self.init_blocks.append(group)
        return [2, 2], [in_ch, in_ch]

    def _forward_stem(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.stem_pool(self.stem_conv(self.stem_pad(x)))
        feats = []
        for group in self.init_blocks:
            x = group(x)
            feats.append(x)
        return feats

    def _stem_modules(self) -> List[nn.Module]:
        return [self.stem_conv]

    # ----------------------------------------------------------------- forward / train
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        plan = self.plan
        in_hw = x.shape[-2:]
        feats = self._forward_stem(x)
        for i, spec in enumerate(self.block_specs):
            if not plan.kept[i]:
                feats.append(None)
                continue
            out_size = _level_size(in_hw, 0, spec.level)
            feats.append(self.blocks[str(i + 1)](
                [feats[p] for p in plan.parents[i]], [feats[m] for m in plan.merged[i]],
                out_size))
        return tuple(self.endpoints[str(level)](feats[node])
                     for level, node in plan.endpoints.items())

    def frozen_modules(self) -> List[nn.Module]:
        """What ``frozen_stages`` freezes (see the class Args)."""
        mods = []
        if self.frozen_stages >= 0:
            mods += self._stem_modules()
        if self.frozen_stages >= 1:
            mods.append(self.init_blocks)
        for k in range(1, self.frozen_stages):
            if str(k) in self.blocks:
                mods.append(self.blocks[str(k)])
        return mods
