"""Draw a scale-permuted backbone's block graph (like Fig. 1 of the SpineNet paper) as a PNG.

Blocks run left to right in build order (the two stem blocks first), at the height of their
feature level; every input connection is an arrow (coloured by up-, down- or same-level
resampling), unconsumed blocks merged into an output block are dashed, output blocks are
ringed and labelled P<level>, and blocks no requested output needs (pruned) are faded.

The wiring is the backbone's own plan (:func:`~mmdet_spine.models.backbones.spinenet.
plan_scale_permuted_network`, via the built module's ``plan``), never re-derived here.

Du et al., "SpineNet: Learning Scale-Permuted Backbone for Recognition and Localization",
CVPR 2020 (https://arxiv.org/abs/1912.05027), Fig. 1 and 4.

Usage (``tools/analysis_tools/draw_spec.py`` parses the command line and calls :func:`main`):
    python tools/analysis_tools/draw_spec.py 49 --out spinenet49.png
    python tools/analysis_tools/draw_spec.py mobile-49XS --out mobile49xs.png
    python tools/analysis_tools/draw_spec.py configs/spinenet/retinanet_spinenet-96_...py \\
        --out spinenet96.png
"""
import argparse
import os.path as osp

from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch

from ..errors import ConfigError

#: Marker and colour per block type; the stem blocks get their own.
BLOCK_STYLE = {
    'bottleneck': dict(marker='s', color='#4c72b0', label='bottleneck block'),
    'residual': dict(marker='o', color='#dd8452', label='residual block'),
    'mbconv': dict(marker='D', color='#55a868', label='MBConv block'),
    'stem': dict(marker='^', color='#8c8c8c', label='stem block'),
}
EDGE_STYLE = {
    'down': dict(color='#c44e52', label='input, downsampled (to a coarser level)'),
    'up': dict(color='#4c72b0', label='input, upsampled (to a finer level)'),
    'same': dict(color='#555555', label='input, same level'),
}
MOBILE_PREFIX = 'mobile-'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('spec', help="an arch ('49', '49S', '96', '143', '143L', '190', "
                        "'mobile-49', 'mobile-49S', 'mobile-49XS') or a config path")
    parser.add_argument('--out', required=True, help='PNG to write')
    parser.add_argument('--min-level', type=int, default=None,
                        help='lowest output level (default: the config / 3)')
    parser.add_argument('--max-level', type=int, default=None,
                        help='highest output level (default: the config / 7)')
    parser.add_argument('--dpi', type=int, default=150)
    return parser.parse_args(argv)


def backbone_cfg(spec: str, min_level=None, max_level=None) -> dict:
    """The backbone config for an arch name or a config file."""
    if spec.endswith('.py') or osp.isfile(spec):
        from mmengine.config import Config
        cfg = Config.fromfile(spec)
        if 'backbone' not in cfg.get('model', {}):
            raise ConfigError(f'{spec}: no model.backbone in this config')
        bb = cfg.model.backbone.to_dict()
    elif spec.lower().startswith(MOBILE_PREFIX):
        bb = dict(type='SpineNetMobile', arch=spec[len(MOBILE_PREFIX):].upper())
    else:
        bb = dict(type='SpineNet', arch=spec.upper())
    if bb.get('type') not in ('SpineNet', 'SpineNetMobile'):
        raise ConfigError(f"{spec}: backbone type {bb.get('type')!r} is not a scale-permuted "
                          "network; valid choices: SpineNet, SpineNetMobile")
    if min_level is not None:
        bb['min_level'] = min_level
    if max_level is not None:
        bb['max_level'] = max_level
    # Drawing needs only the plan: plain BN, no stochastic depth, no weights to load.
    bb.update(norm_cfg=dict(type='BN'), drop_path_rate=0.0, init_cfg=None)
    return bb


def build_backbone(cfg: dict):
    import torch

    from .. import models  # noqa: F401  (registers the backbones)
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    try:
        with torch.device('meta'):  # no memory for the weights; SpineNet-190 builds at once
            return MODELS.build(cfg)
    except (ValueError, KeyError):
        raise
    except Exception:  # noqa: BLE001  (a layer that cannot live on 'meta')
        return MODELS.build(cfg)


def _bend(src: int, dst: int, levels) -> float:
    """Arc curvature for an edge: none between neighbours, a similar bulge for long and short
    edges, bending up (into the plot) for edges along the lowest level."""
    span = dst - src
    if span <= 1:
        return 0.0
    rad = 0.3 * min(1.0, 3.0 / span)
    return -rad if levels[src] == levels[dst] == min(levels) else rad


def title_of(model) -> str:
    s = model.settings
    name = f'{model._display_name}-{model.arch}'
    parts = [f"filter scale {s['filter_size_scale']}", f"endpoints {s['endpoints_num_filters']}"]
    if 'resample_alpha' in s and model._display_name == 'SpineNet':
        parts.append(f"resample alpha {s['resample_alpha']}")
    parts.append(f"block repeats {s['block_repeats']}")
    kept = sum(model.plan.kept)
    return (f'{name}: {kept} of {len(model.block_specs)} blocks kept, outputs '
            f'P{model.min_level}-P{model.max_level}\n' + ', '.join(parts))


def draw(model, out: str, dpi: int = 150) -> str:
    """Draw ``model``'s block graph (a built SpineNet / SpineNetMobile) into ``out``."""
    plan, specs = model.plan, model.block_specs
    n_init = plan.num_init
    n_nodes = len(plan.levels)
    levels = plan.levels
    kinds = ['stem'] * n_init + [s.block_fn for s in specs]
    kept = [True] * n_init + list(plan.kept)
    outputs = {node: level for level, node in plan.endpoints.items()}
    unused_outputs = {n_init + i for i, s in enumerate(specs) if s.is_output} - set(outputs)

    fig = Figure(figsize=(max(8.0, 0.75 * n_nodes + 3), 5.2))
    ax = fig.subplots()
    for i in range(n_nodes - n_init):
        node = n_init + i
        alpha = 1.0 if kept[node] else 0.25
        for parent in plan.parents[i]:
            d = levels[node] - levels[parent]
            kind = 'same' if d == 0 else ('down' if d > 0 else 'up')
            rad = _bend(parent, node, levels)
            ax.add_patch(FancyArrowPatch(
                (parent, levels[parent]), (node, levels[node]), arrowstyle='-|>',
                mutation_scale=11, lw=1.3, color=EDGE_STYLE[kind]['color'], alpha=0.8 * alpha,
                connectionstyle=f'arc3,rad={rad}', shrinkA=9, shrinkB=9, zorder=1))
        for m in plan.merged[i]:
            ax.add_patch(FancyArrowPatch(
                (m, levels[m]), (node, levels[node]), arrowstyle='-|>', mutation_scale=11,
                lw=1.3, ls='--', color='#55a868', alpha=alpha,
                connectionstyle=f'arc3,rad={-_bend(m, node, levels)}', shrinkA=9, shrinkB=9,
                zorder=1))

    for node in range(n_nodes):
        st = BLOCK_STYLE[kinds[node]]
        is_out = node in outputs
        ax.scatter(node, levels[node], marker=st['marker'], s=260, c=st['color'],
                   alpha=1.0 if kept[node] else 0.25,
                   edgecolors='#d62728' if is_out else 'black',
                   linewidths=3.0 if is_out else 0.8, zorder=3)
        label = f'S{node + 1}' if node < n_init else str(node - n_init + 1)
        ax.annotate(label, (node, levels[node]), xytext=(0, -17), textcoords='offset points',
                    ha='center', va='top', fontsize=8,
                    color='#333333' if kept[node] else '#aaaaaa')
        if is_out:
            ax.annotate(f'P{outputs[node]}', (node, levels[node]), xytext=(0, 12),
                        textcoords='offset points', ha='center', va='bottom', fontsize=9,
                        fontweight='bold', color='#d62728')
        elif node in unused_outputs and kept[node]:
            ax.annotate(f'(P{levels[node]})', (node, levels[node]), xytext=(0, 12),
                        textcoords='offset points', ha='center', va='bottom', fontsize=8,
                        color='#d62728')

    all_levels = sorted(set(levels))
    ax.set_yticks(all_levels)
    ax.set_yticklabels([f'L{lv} (/{2 ** lv})' for lv in all_levels])
    ax.set_ylim(all_levels[0] - 0.7, all_levels[-1] + 0.8)
    ax.set_xlim(-0.8, n_nodes - 0.2)
    ax.set_xticks([])
    ax.set_xlabel('blocks in build order (S1, S2: stem blocks; 1..N: block specs)')
    ax.set_ylabel('feature level (stride)')
    ax.grid(axis='y', color='#eeeeee', zorder=0)
    for side in ('top', 'right'):
        ax.spines[side].set_visible(False)
    ax.set_title(title_of(model), fontsize=10)

    handles = [Line2D([], [], ls='', marker=BLOCK_STYLE[k]['marker'], ms=9,
                      mfc=BLOCK_STYLE[k]['color'], mec='black', label=BLOCK_STYLE[k]['label'])
               for k in BLOCK_STYLE if k in kinds]
    handles.append(Line2D([], [], ls='', marker='o', ms=10, mfc='white', mec='#d62728', mew=3,
                          label='output block (P<level>)'))
    if not all(kept):
        handles.append(Line2D([], [], ls='', marker='s', ms=9, mfc='#4c72b0', alpha=0.25,
                              mec='black', label='pruned: no requested output needs it'))
    handles += [Line2D([], [], color=EDGE_STYLE[k]['color'], lw=1.5, label=EDGE_STYLE[k]['label'])
                for k in EDGE_STYLE]
    if any(plan.merged):
        handles.append(Line2D([], [], color='#55a868', lw=1.5, ls='--',
                              label='unconsumed block merged into an output'))
    ax.legend(handles=handles, loc='upper left', bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    return out


def main(argv=None):
    """Parse ``argv`` (default: ``sys.argv[1:]``), build the backbone, write the PNG."""
    args = parse_args(argv)
    try:
        model = build_backbone(backbone_cfg(args.spec, args.min_level, args.max_level))
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(f'{args.spec}: {e}') from None
    draw(model, args.out, args.dpi)
    print(f'wrote {args.out}')
