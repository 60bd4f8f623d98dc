"""Generate the README's tables from the code's tables and the metafiles (never by hand).

Usage:
    python tools/misc/readme_tables.py --write   # rewrite the tables in README.md
    python tools/misc/readme_tables.py --check   # exit 1 if README.md has drifted

Each table sits between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` markers. Parameter
counts are computed by building the models (on the ``meta`` device where possible); the model
zoo tables come from ``configs/*/metafile.yml`` (whose numbers
``tools/analysis_tools/model_complexity.py --update-metafiles`` computes).
"""
import argparse
import os.path as osp
import re
import sys

import torch

README = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'README.md')


def _params(cfg) -> int:
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    try:
        with torch.device('meta'):
            model = MODELS.build(cfg)
    except RuntimeError:  # some parts (anchor generators) compute on real tensors at build
        model = MODELS.build(cfg)
    return sum(p.numel() for p in model.parameters())


def spinenet_table() -> str:
    from mmdet_spine.models.backbones.spinenet import SPINENET_ARCH_SETTINGS
    from mmdet_spine.models.backbones.spinenet_mobile import SpineNetMobile
    rows = ['| backbone | endpoints | filter scale | resample α | block repeats | params (P3–P7) |',
            '|---|---|---|---|---|---|']
    for arch, s in SPINENET_ARCH_SETTINGS.items():
        n = _params(dict(type='SpineNet', arch=arch))
        rows.append(f"| SpineNet-{arch} | {s['endpoints_num_filters']} | "
                    f"{s['filter_size_scale']} | {s['resample_alpha']} | {s['block_repeats']} | "
                    f'{n:,} |')
    for arch, s in SpineNetMobile.arch_settings.items():
        n = _params(dict(type='SpineNetMobile', arch=arch))
        rows.append(f"| SpineNet-Mobile-{arch} | {s['endpoints_num_filters']} | "
                    f"{s['filter_size_scale']} | {s.get('resample_alpha', '–')} | "
                    f"{s.get('block_repeats', 1)} | {n:,} |")
    return '\n'.join(rows)


def efficientdet_table() -> str:
    from mmdet_spine.models.detectors.efficientdet_scaling import (EFFICIENTDET_SCALING,
                                                                    efficientdet_model_cfg)
    rows = ['| model | input | backbone | BiFPN width | BiFPN layers | head layers | '
            'anchor scale | fusion | levels | activation | input norm | params (90 classes) |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|']

    def name(v):  # 'd7x' -> 'D7X', 'lite3x' -> 'Lite3x', 'b4' -> 'B4'
        return 'Lite' + v[4:] if v.startswith('lite') else v.upper()

    for v, s in EFFICIENTDET_SCALING.items():
        n = _params(efficientdet_model_cfg(v))
        lo, hi = s['levels']
        rows.append(f"| EfficientDet-{name(v)} | {s['input_size']} | "
                    f"EfficientNet-{name(s['backbone'])} | {s['bifpn_channels']} | "
                    f"{s['bifpn_stages']} | {s['head_convs']} | {s['anchor_scale']} | "
                    f"{s['fusion']} | P{lo}–P{hi} | {s['act']} | {s['input_norm']} | {n:,} |")
    return '\n'.join(rows)


def _metafile_models(family: str):
    import yaml
    path = osp.join(osp.dirname(README), 'configs', family, 'metafile.yml')
    with open(path) as f:
        return yaml.safe_load(f)['Models']


def _zoo_weights(m) -> str:
    url = m.get('Weights')
    if not url:
        return '–'
    up = m.get('Upstream') or {}
    name = osp.basename(url.split('?')[0])
    if up.get('Alias Of'):
        return f"[{name}]({url}), same weights as `{up['Alias Of']}`"
    if up.get('Converter') and up['Converter'] == 'spinenet_tf2mmdet':
        how = f"`{up['Converter']}` (needs TF)"
    elif up.get('Converter'):
        how = f"`{up['Converter']}`"
    else:
        how = 'no converter yet'
    verified = up.get('Verified By') or []  # pytest node ids (the metafile lists them all)
    parity = [t.split('::')[-1] for t in verified if 'parity' in t.split('::')[-1]]
    if parity:
        how += ', parity: ' + ', '.join(f'`{t}`' for t in parity)
    elif verified:
        how += ', verified by ' + ', '.join(f"`{t.split('::')[-1]}`" for t in verified)
    return f'[{name}]({url}), {how}'


def zoo_table(family: str) -> str:
    """One README row per metafile model: config, size, params, FLOPs, published AP, weights."""
    rows = ['| zoo name | config | input | params | FLOPs | box AP (published) | '
            'official weights, converter, verification |', '|---|---|---|---|---|---|---|']
    for m in _metafile_models(family):
        meta = m['Metadata']
        ap = next((r['Metrics']['box AP'] for r in m.get('Results') or []
                   if 'box AP' in r['Metrics']), None)
        params = f"{meta['Parameters'] / 1e6:.1f} M" if meta.get('Parameters') else '?'
        flops = f"{meta['FLOPs'] / 1e9:.1f} G" if meta.get('FLOPs') else '?'
        config = m['Config']
        rows.append(f"| `{m['Name']}` | [{osp.basename(config)[:-3]}]({config}) | "
                    f"{meta['Input Size']} | {params} | {flops} | "
                    f"{'–' if ap is None else ap} | {_zoo_weights(m)} |")
    return '\n'.join(rows)


TABLES = {'spinenet-table': spinenet_table, 'efficientdet-table': efficientdet_table,
          'zoo-efficientdet-table': lambda: zoo_table('efficientdet'),
          'zoo-spinenet-table': lambda: zoo_table('spinenet'),
          'zoo-spineresnet-table': lambda: zoo_table('spineresnet')}


def render(text: str) -> str:
    for name, make in TABLES.items():
        pattern = re.compile(rf'(<!-- BEGIN {name} -->\n)(?:.*?\n)?(<!-- END {name} -->)', re.S)
        if not pattern.search(text):
            raise SystemExit(f'README.md has no <!-- BEGIN {name} --> ... <!-- END {name} --> block')
        text = pattern.sub(lambda m: m.group(1) + make() + '\n' + m.group(2), text)
    return text


def main():
    parser = argparse.ArgumentParser(description='README tables from the code')
    parser.add_argument('--write', action='store_true')
    parser.add_argument('--check', action='store_true')
    args = parser.parse_args()
    import mmdet_spine  # noqa: F401
    with open(README) as f:
        current = f.read()
    wanted = render(current)
    if args.write:
        with open(README, 'w') as f:
            f.write(wanted)
    elif args.check and wanted != current:
        print('README.md tables differ from the code; run tools/misc/readme_tables.py --write')
        sys.exit(1)
    elif not args.check:
        print(wanted)


if __name__ == '__main__':
    main()
