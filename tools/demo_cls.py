"""The classification job, end to end on a CPU: generated data, training, top-1 on val.

Generates the six-class shapes classification dataset (first run only), trains the small
SpineNet classifier of the demo config from scratch and prints its top-1 / top-5 accuracy on
the validation split and the wall time.

Usage: python tools/demo_cls.py [--config CONFIG] [--work-dir work_dirs/demo_cls]
                                [--threads 1] [--cfg-options k=v ...]

One intra-op thread by default: the demo's narrow convolutions gain nothing from a second
thread (measured: 1.8 min either way on this 2-core machine at light load), and two threads that
share a busy CPU with other processes spin-wait for each other (measured: 18.5 min instead).
"""
import argparse
import time

from mmengine.config import DictAction

DEFAULT_CONFIG = 'configs/spinenet_cls/spinenet-49s-tiny_1xb32-10e_shapes-cls.py'


def parse_args():
    parser = argparse.ArgumentParser(description='Train and evaluate the demo classifier')
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/demo_cls')
    parser.add_argument('--threads', type=int, default=1,
                        help='intra-op CPU threads (torch.set_num_threads)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args()


def main():
    args = parse_args()
    import torch
    torch.set_num_threads(max(1, args.threads))
    import mmdet_spine  # noqa: F401
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmdet_spine.engine.cli import load_config, registry_hint

    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    start = time.time()
    with registry_hint(cfg):
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        runner.train()
        # the loop validated after the last epoch when val_interval divides max_epochs
        logged = runner.message_hub.log_scalars
        if runner.epoch % cfg.train_cfg.get('val_interval', 1) or \
                'val/accuracy/top1' not in logged:
            runner.val()
    minutes = (time.time() - start) / 60
    top1 = logged['val/accuracy/top1'].current()
    top5 = logged['val/accuracy/top5'].current()
    print(f'\nClassification demo finished in {minutes:.1f} min: top-1 = {top1 / 100:.3f} '
          f'(top-5 = {top5 / 100:.3f}) on {len(runner.val_dataloader.dataset)} val images')


if __name__ == '__main__':
    from mmdet_spine.engine.cli import run_cli
    run_cli(main)
