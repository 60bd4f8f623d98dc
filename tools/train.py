"""Train a detector (mmdet's tools/train.py, plus CPU distributed and safe checkpoints).

Usage:
    python tools/train.py CONFIG [--work-dir DIR] [--resume [PATH]] [--amp]
                          [--auto-scale-lr] [--cfg-options k=v ...] [--launcher pytorch]
                          [--traceback]

Bad input is one line on stderr (exit code 2); --traceback or MMDET_SPINE_TRACEBACK=1 shows
the traceback.
"""
import argparse
import os
import sys

from mmengine.config import DictAction


def parse_args():
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (GPU: fp16 with loss scaling or the '
                             "config's dtype; CPU: bfloat16 autocast)")
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual batch size / auto_scale_lr.base_batch_size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from PATH, or without PATH from the latest checkpoint '
                        'in the work dir')
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
    import mmdet_spine  # noqa: F401  (registers modules, the runner, safe checkpoint schemes)
    from mmdet.utils import setup_cache_size_limit_of_dynamo
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmdet_spine.engine import find_resumable_checkpoint, setup_distributed
    from mmdet_spine.engine.cli import check_resume_checkpoint, load_config, registry_hint
    from mmdet_spine.errors import UserError

    setup_cache_size_limit_of_dynamo()
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    if args.amp:
        import torch
        from mmdet_spine.engine import cpu_has_native_bf16
        if torch.cuda.is_available():
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
        else:  # bfloat16 autocast on the CPU (mmengine's AmpOptimWrapper needs a GPU)
            cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
            cfg.optim_wrapper.pop('loss_scale', None)
            if not cpu_has_native_bf16():
                print('--amp: this CPU has no native bfloat16 (AMX / AVX-512 BF16); oneDNN '
                      'emulates it, which is slower than float32', file=sys.stderr)
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise UserError('--auto-scale-lr needs auto_scale_lr = dict(base_batch_size=...) '
                            'in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        # the newest complete checkpoint that verifies, whatever last_checkpoint names
        cfg.load_from = find_resumable_checkpoint(cfg.work_dir)
        cfg.resume = cfg.load_from is not None
        if not cfg.resume:
            print(f'--resume: no complete checkpoint in {cfg.work_dir}; training from the start',
                  file=sys.stderr)
    elif args.resume is not None:
        check_resume_checkpoint(args.resume)
        cfg.resume, cfg.load_from = True, args.resume
    setup_distributed(cfg, args.launcher)
    with registry_hint(cfg):
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        runner.train()


if __name__ == '__main__':
    from mmdet_spine.engine.cli import run_cli
    run_cli(main)
