"""The main job, end to end on a CPU: data, training, COCO evaluation, drawn predictions.

Generates the shapes dataset (first run only), trains the demo detector from scratch, prints
COCO bbox mAP on the validation split and writes a few validation images with their
predictions drawn to ``work_dirs/demo/predictions/*.png``.

On a CPU with native bfloat16 (AMX or AVX-512 BF16) it trains with bfloat16 autocast
(``CPUAmpOptimWrapper``; measured on the shapes demo: the step in 0.74x the float32 step's
time, mAP within the spread of float32 runs); elsewhere in float32. ``--amp on|off``
overrides.

Usage: python tools/demo.py [--config CONFIG] [--work-dir work_dirs/demo] [--num-vis 6]
                            [--amp auto|on|off]
"""
import argparse
import os
import os.path as osp
import time

from mmengine.config import DictAction

DEFAULT_CONFIG = 'configs/spinenet/retinanet_spinenet-49s-tiny_8xb8-12e_shapes.py'


def parse_args():
    parser = argparse.ArgumentParser(description='Train and evaluate the demo detector')
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--num-vis', type=int, default=6, help='val images to draw')
    parser.add_argument('--amp', choices=['auto', 'on', 'off'], default='auto',
                        help='bfloat16 autocast on the CPU: auto = where the CPU computes '
                             'bfloat16 natively')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args()


def main():
    args = parse_args()
    import mmcv
    import mmdet_spine  # noqa: F401
    from mmdet.apis import inference_detector
    from mmdet.registry import VISUALIZERS
    from mmengine.hooks import EMAHook
    from mmengine.runner import Runner

    import torch
    from mmdet_spine.engine import cpu_has_native_bf16
    from mmdet_spine.engine.cli import load_config, registry_hint

    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    amp = args.amp == 'on' or (args.amp == 'auto' and cpu_has_native_bf16())
    if amp and not torch.cuda.is_available():
        cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
    print(f"Training {'with bfloat16 autocast' if amp else 'in float32'} "
          f'(--amp {args.amp})', flush=True)
    start = time.time()
    with registry_hint(cfg):
        runner = Runner.from_cfg(cfg)
        runner.train()
        scalars = runner.message_hub.log_scalars
        if 'val/coco/bbox_mAP' not in scalars:  # the config skipped the final validation
            runner.val_loop.run()
    metrics = {k[len('val/'):]: v.current() for k, v in scalars.items() if k.startswith('val/')}
    minutes = (time.time() - start) / 60

    # the weights the validation used: the EMA's where the config averages them
    ema = next((h for h in runner.hooks if isinstance(h, EMAHook)), None)
    model = ema.ema_model.module if ema is not None else runner.model
    model.cfg = cfg
    dataset = runner.val_dataloader.dataset
    visualizer = VISUALIZERS.build(dict(type='DetLocalVisualizer', name='demo_vis'))
    visualizer.dataset_meta = dataset.metainfo
    out_dir = osp.join(args.work_dir, 'predictions')
    os.makedirs(out_dir, exist_ok=True)
    for i in range(min(args.num_vis, len(dataset))):
        path = dataset.get_data_info(i)['img_path']
        result = inference_detector(model, path)
        img = mmcv.imconvert(mmcv.imread(path), 'bgr', 'rgb')
        out_file = osp.join(out_dir, osp.basename(path))
        visualizer.add_datasample(osp.basename(path), img, data_sample=result, draw_gt=False,
                                  show=False, pred_score_thr=0.3, out_file=out_file)
    bbox_map = metrics.get('coco/bbox_mAP')
    print(f'\nDemo finished in {minutes:.1f} min: COCO bbox mAP@[.5:.95] = {bbox_map:.3f} '
          f"(mAP@.5 = {metrics.get('coco/bbox_mAP_50', float('nan')):.3f}); "
          f'predictions drawn in {out_dir}/')


if __name__ == '__main__':
    from mmdet_spine.engine.cli import run_cli
    run_cli(main)
