"""Time rwightman's effdet (the reference EfficientDet) in its own process.

effdet and timm import torchvision at module level; torchvision cannot load against the CPU
torch here and the package never imports it, so effdet is imported behind the test suite's
inert stand-in (``tests/torchvision_standin.py``) in this separate process, never in the
benchmark's. ``tools/analysis_tools/benchmark.py --compare`` starts it with ``--serve`` and
answers the JSON-lines protocol of ``tools/analysis_tools/latency_worker.py``.
"""
import argparse
import json
import os.path as osp
import sys
import time

import torch

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, TESTS)  # the torchvision stand-in
sys.path.insert(0, osp.join(osp.dirname(TESTS), 'tools', 'analysis_tools'))  # latency_worker


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
    import torchvision_standin
    effdet = torchvision_standin.import_effdet()
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
