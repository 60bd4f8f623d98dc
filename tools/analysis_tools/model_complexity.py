"""Parameters and FLOPs of the zoo's configs, and the metafiles' ``Metadata`` kept in sync.

Parameters are counted on the model that the config builds. FLOPs are mmengine's
``get_model_complexity_info`` count (one multiply-add = one FLOP, the convention of the
SpineNet and EfficientDet papers) for one forward in mmdet's ``'tensor'`` mode (backbone, neck
and heads' raw outputs; for two-stage detectors also the RPN proposals and RoI heads, as
mmdet's ``get_flops.py`` counts them) on one square image of the metafile's ``Input Size``.

The counting is :mod:`mmdet_spine.analysis.complexity` (shared with the benchmark); this
script runs it on a config or on every metafile model of a checkout. The count traces a real
CPU forward (mmengine's analyser cannot trace on the ``meta`` device), so the 1280-1536 px
models take minutes each: the numbers are computed once and stored in the metafiles;
``tests/test_zoo`` recomputes the parameters of every model and the FLOPs of a small one.

Usage::

    python tools/analysis_tools/model_complexity.py CONFIG [--size 640]
    python tools/analysis_tools/model_complexity.py --update-metafiles [--only NAME_PART]
"""
import argparse
import os.path as osp

import yaml
from mmdet_spine.analysis.complexity import build_detector, count_flops, count_parameters
from mmdet_spine.engine.cli import run_cli

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METAFILES = [osp.join(REPO, 'configs', f, 'metafile.yml')
             for f in ('efficientdet', 'spinenet', 'spineresnet')]


def update_metafiles(only: str = '', force: bool = False) -> None:
    """Fill in ``Parameters`` and ``FLOPs`` of the metafiles' models (in place, one model at a
    time, so an interrupted run keeps what it computed). Models that have both are skipped
    unless ``force``."""
    done = {}
    for path in METAFILES:
        with open(path) as f:
            data = yaml.safe_load(f)
        for m in data['Models']:
            meta = m['Metadata']
            key = (m['Config'], meta['Input Size'])
            if only and only not in m['Name']:
                continue
            if key not in done and not force and meta.get('Parameters') and meta.get('FLOPs'):
                done[key] = meta['Parameters'], meta['FLOPs']
            if key not in done:
                config = osp.join(REPO, m['Config'])
                done[key] = (count_parameters(build_detector(config, 'meta')),
                             count_flops(config, meta['Input Size']))
                print(f'{m["Config"]} @{key[1]}: {done[key][0]:,} params, '
                      f'{done[key][1] / 1e9:.2f} GFLOPs', flush=True)
            meta['Parameters'], meta['FLOPs'] = done[key]
            with open(path, 'w') as f:
                yaml.safe_dump(data, f, sort_keys=False, width=100, allow_unicode=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?')
    parser.add_argument('--size', type=int, default=640, help='square input size (pixels)')
    parser.add_argument('--update-metafiles', action='store_true',
                        help='recompute Parameters/FLOPs of every metafile model')
    parser.add_argument('--only', default='', help='with --update-metafiles: names containing')
    parser.add_argument('--force', action='store_true',
                        help='with --update-metafiles: recompute models that have numbers')
    args = parser.parse_args(argv)
    if args.update_metafiles:
        update_metafiles(args.only, args.force)
    elif args.config:
        params = count_parameters(build_detector(args.config, 'meta'))
        flops = count_flops(args.config, args.size)
        print(f'{args.config} @{args.size}: {params:,} params, {flops / 1e9:.2f} GFLOPs')
    else:
        parser.error('give a CONFIG or --update-metafiles')


if __name__ == '__main__':
    run_cli(main)
