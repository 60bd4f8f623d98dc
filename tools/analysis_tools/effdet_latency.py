"""Time rwightman's effdet (the reference EfficientDet) in its own process.

``tools/analysis_tools/benchmark.py --compare`` starts it with ``--serve``; it answers the
JSON-lines protocol of ``latency_worker.py`` (beside this file). effdet and timm import
torchvision at module level. Where torchvision cannot load (a CPU torch build it was not made
for), ``$MMDET_SPINE_EFFDET_PRELUDE`` names a module, importable from ``PYTHONPATH``, whose
``import_effdet()`` returns effdet (the test suite points it at its torchvision stand-in);
effdet is only ever imported in this separate process, never in the benchmark's.
"""
import argparse
import importlib
import json
import os
import os.path as osp
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # latency_worker
#: Environment variable naming a module whose ``import_effdet()`` imports effdet.
ENV_PRELUDE = 'MMDET_SPINE_EFFDET_PRELUDE'


def import_effdet():
    """effdet, through ``$MMDET_SPINE_EFFDET_PRELUDE`` when set."""
    prelude = os.environ.get(ENV_PRELUDE)
    if prelude:
        return importlib.import_module(prelude).import_effdet()
    return importlib.import_module('effdet')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--name', default='tf_efficientdet_d0', help='effdet model name')
    p.add_argument('--size', type=int, nargs=2, default=(512, 512), metavar=('H', 'W'))
    p.add_argument('--num-classes', type=int, default=90)
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: default)')
    p.add_argument('--serve', action='store_true', help='answer JSON requests on stdin')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as the benchmark does for our side
    effdet = import_effdet()
    from importlib.metadata import version
    device = torch.device(args.device)
    config = effdet.get_efficientdet_config(args.name)
    config.image_size = tuple(args.size)
    config.num_classes = args.num_classes
    torch.manual_seed(0)
    model = effdet.create_model_from_config(
        config, pretrained=False, pretrained_backbone=False).eval().to(device)

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    @torch.no_grad()
    def run(x) -> float:
        sync()
        start = time.perf_counter()
        model(x)
        sync()
        return time.perf_counter() - start

    def make_input(batch):
        x = torch.randn(batch, 3, *args.size, device=device)
        run(x)  # untimed
        return x

    params = sum(p.numel() for p in model.parameters())
    name = f"effdet {version('effdet')} {args.name}"
    if not args.serve:
        print(json.dumps(dict(ready=1, params=params, name=name)))
        print(json.dumps(dict(seconds=run(make_input(1)))))
        return 0
    from latency_worker import serve
    return serve(dict(params=params, name=name), make_input, run)


if __name__ == '__main__':
    sys.exit(main())
