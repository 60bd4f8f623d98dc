"""The model zoo from the command line: list, inspect, fetch (download + verify + convert).

Usage::

    python tools/zoo.py list [FILTER]        # every zoo model; FILTER keeps names containing it
    python tools/zoo.py info NAME            # config, URL, source, checksum, converter, cache
    python tools/zoo.py fetch NAME [--tf-python PY] [--keep-download]
    python tools/zoo.py path NAME            # the cached checkpoint (exit 1 if not fetched)

``fetch`` prints the config to use the checkpoint with, e.g.::

    python tools/zoo.py fetch efficientdet-d0_effdet
    python tools/test.py configs/efficientdet/efficientdet_d0_bifpn_8xb16-300e_coco.py \\
        zoo://efficientdet-d0_effdet

Checkpoints are cached under ``$TORCH_HOME/hub/checkpoints/mmdet_spine`` (the torch hub
directory). ``--index FILE`` (repeatable) or ``$MMDET_SPINE_ZOO_INDEX`` adds model-index files.
"""
import argparse
import os
import os.path as osp
import sys

def _rel(path: str) -> str:
    rel = osp.relpath(path, os.getcwd())
    return path if rel.startswith('..') else rel


def _status(model) -> str:
    if not model.url:
        return 'no published weights'
    if model.alias_of:
        return f'same weights as {model.alias_of}'
    if model.converter is None and model.format != 'mmdet':
        return f'{model.format}: no converter yet'
    if model.needs_tensorflow:
        return f'{model.converter} (needs --tf-python)'
    return model.converter or 'ready (mmdet format)'


def _cfg_options(model) -> str:
    opts = ' '.join(f'{k}={v}' for k, v in model.cfg_options.items())
    return f' --cfg-options {opts}' if opts else ''


def cmd_list(args, zoo):
    models = [m for m in zoo.load_model_index().values() if args.filter in m.name]
    width = max((len(m.name) for m in models), default=4)
    print(f'{"name":<{width}}  {"box AP":>6}  {"cached":<6}  weights')
    for m in models:
        ap = '' if m.box_ap is None else f'{m.box_ap:.1f}'
        cached = 'yes' if _safe_cached(zoo, m.name) else ''
        print(f'{m.name:<{width}}  {ap:>6}  {cached:<6}  {_status(m)}')
    print(f'{len(models)} models; box AP is the published number (see `info NAME`)')


def _safe_cached(zoo, name):
    try:
        return zoo.find_cached(name)
    except zoo.ZooError:
        return None


def cmd_info(args, zoo):
    m = zoo.get_model(args.name)
    rows = [('name', m.name), ('collection', m.collection), ('config', _rel(m.config)),
            ('metafile', _rel(m.metafile))]
    for key in ('Input Size', 'Parameters', 'FLOPs', 'Epochs'):
        if m.metadata.get(key) is not None:
            value = m.metadata[key]
            rows.append((key.lower(), f'{value:,}' if isinstance(value, int) else value))
    for r in m.results:
        for metric, value in (r.get('Metrics') or {}).items():
            rows.append((metric, f'{value} ({m.results_note or "published"})'))
    rows += [('weights', m.url or '-'), ('source', m.upstream.get('Source', '-')),
             ('format', m.format if m.url else '-'),
             ('sha256', m.sha256 or ('not published' if m.url else '-')),
             ('converter', _status(m))]
    if m.converter_note:
        rows.append(('converter note', m.converter_note))
    if m.cfg_options:
        rows.append(('evaluate with', _cfg_options(m).strip()))
    rows.append(('cached', _safe_cached(zoo, m.name) or f'no (cache: {zoo.cache_dir()})'))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f'{k:<{width}}  {v}')


def cmd_fetch(args, zoo):
    m = zoo.get_model(args.name)
    path = zoo.fetch(args.name, tf_python=args.tf_python, progress=not args.quiet,
                     keep_download=args.keep_download)
    print(f'checkpoint: {path}')
    if m.converter_note and m.needs_tensorflow:
        print(f'note:       {m.converter_note}')
    print(f'config:     {_rel(m.config)}')
    print(f'evaluate:   python tools/test.py {_rel(m.config)} zoo://{m.name}{_cfg_options(m)}')
    print(f'fine-tune:  python tools/train.py CONFIG --cfg-options load_from=zoo://{m.name}')


def cmd_path(args, zoo):
    zoo.get_model(args.name)
    path = zoo.find_cached(args.name)
    if not path:
        print(f'{args.name} is not fetched yet (cache: {zoo.cache_dir()}); run: python '
              f'tools/zoo.py fetch {args.name}', file=sys.stderr)
        sys.exit(1)
    print(path)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--index', action='append', default=[],
                        help='extra model-index.yml (repeatable; also $MMDET_SPINE_ZOO_INDEX)')
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('list', help='list zoo models')
    p.add_argument('filter', nargs='?', default='', help='keep names containing this')
    p = sub.add_parser('info', help='everything known about one model')
    p.add_argument('name')
    p = sub.add_parser('fetch', help='download, verify, convert and cache one model')
    p.add_argument('name')
    p.add_argument('--tf-python', help='Python with TensorFlow for TF checkpoints '
                   '(default: $MMDET_SPINE_TF_PYTHON)')
    p.add_argument('--keep-download', action='store_true',
                   help='keep the upstream file in the cache after converting')
    p.add_argument('--quiet', action='store_true', help='no progress bar')
    p = sub.add_parser('path', help='print the cached checkpoint path')
    p.add_argument('name')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.index:
        from mmdet_spine.zoo.model_index import ENV_INDEX
        extra = [osp.abspath(p) for p in args.index]
        old = os.environ.get(ENV_INDEX)
        os.environ[ENV_INDEX] = os.pathsep.join(([old] if old else []) + extra)
    from mmdet_spine import zoo
    {'list': cmd_list, 'info': cmd_info, 'fetch': cmd_fetch, 'path': cmd_path}[args.command](
        args, zoo)


if __name__ == '__main__':
    from mmdet_spine.engine.cli import run_cli
    run_cli(main)
