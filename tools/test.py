"""Test (and evaluate) a detector: mmdet's tools/test.py with safe checkpoint loading.

Usage:
    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
                         [--show-dir DIR] [--fuse-conv-bn] [--cfg-options k=v ...]
                         [--launcher pytorch] [--traceback]

``--fuse-conv-bn`` folds every batch norm into its conv after loading (mmdet 2.x's flag):
faster CPU inference, network outputs checked on the first batch (within 1e-4 relative).
On the CPU the default runtime's ``ChannelsLastHook`` already runs the model channels-last.

A checkpoint written by mmdet-spine is verified against its sha256 record before it is used;
bad input is one line on stderr (exit code 2).
"""
import argparse
import os

from mmengine.config import DictAction


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file, URL or zoo:// name')
    parser.add_argument('--work-dir', help='where the evaluation metrics are saved')
    parser.add_argument('--out', help='dump predictions to a .pkl file')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='save drawn predictions under '
                        'work_dir/<timestamp>/SHOW_DIR')
    parser.add_argument('--wait-time', type=float, default=2, help='interval of --show (s)')
    parser.add_argument('--fuse-conv-bn', action='store_true',
                        help='fold batch norms into the convs for a faster inference (outputs '
                             'checked on the first batch)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--traceback', action='store_true',
                        help='show the full traceback of an error (or set MMDET_SPINE_TRACEBACK=1)')
    try:
        args = parser.parse_args()
    except RecursionError:  # mmengine's DictAction on a value such as dict(type=...)
        parser.error('--cfg-options: a value mmengine cannot parse (write key=value, lists as '
                     "key=[a,b]; a dict as nested keys, e.g. model.backbone.arch=49, not dict(...))")
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    import mmdet_spine  # noqa: F401
    from mmdet.engine.hooks.utils import trigger_visualization_hook
    from mmdet.evaluation import DumpDetResults
    from mmdet.utils import setup_cache_size_limit_of_dynamo
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmdet_spine.engine import setup_distributed
    from mmdet_spine.engine.cli import load_config, registry_hint
    from mmdet_spine.errors import UserError

    setup_cache_size_limit_of_dynamo()
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    cfg.load_from = args.checkpoint
    if not args.checkpoint.startswith(('http://', 'https://', 'zoo://')) and \
            not os.path.isfile(args.checkpoint):
        raise UserError(f'checkpoint not found: {args.checkpoint}')
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise UserError(f'--out must name a .pkl file, got {args.out}')
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.fuse_conv_bn:
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [dict(type='FuseConvBNHook')]
    setup_distributed(cfg, args.launcher)
    with registry_hint(cfg):
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        if args.out is not None:
            runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
        runner.test()


if __name__ == '__main__':
    from mmdet_spine.engine.cli import run_cli
    run_cli(main)
