"""Time rwightman's effdet (the reference EfficientDet) in its own process.

``tools/analysis_tools/benchmark.py --compare`` starts it with ``--serve``; it answers the
JSON-lines protocol of ``latency_worker.py`` (beside this file). Two things can be timed:

- inference (default): the whole network (``EfficientDet``: backbone, BiFPN, class/box nets,
  no NMS) under ``no_grad``, eagerly as shipped (mode ``eager``) or, with ``--compile``,
  through ``latency_worker.compile_for_inference`` (``torch.compile`` with inductor freezing,
  the function that compiles our model; mode ``compiled``); ``--channels-last`` converts the
  model and the input to NHWC;
- ``--train``: one training step of effdet's ``DetBenchTrain`` with its anchor labeler
  (``bench_labeler=True``): forward, anchor labels of the request's ground truths, focal +
  Huber loss, backward and an SGD step (lr 1e-5, momentum 0.9, as the benchmark's own step).
  The targets are what effdet's loader gives the bench: ``bbox`` as pixel ``[y0, x0, y1, x1]``
  and ``cls`` 1-based (``AnchorLabeler.batch_label_anchors`` subtracts one), so the
  benchmark's 0-based ``[x0, y0, x1, y1]`` boxes are reordered and their labels shifted.

effdet and timm import torchvision at module level. Where torchvision cannot load (a CPU
torch build it was not made for), ``$MMDET_SPINE_EFFDET_PRELUDE`` names a module, importable
from ``PYTHONPATH``, whose ``import_effdet()`` returns effdet (the test suite points it at its
torchvision stand-in); effdet is only ever imported in this separate process, never in the
benchmark's.

Usage::

    python mmdet_spine/analysis/references/effdet_latency.py --name tf_efficientdet_d0 --size 512 512 \\
        [--compile] [--channels-last] [--train]
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
from latency_worker import compile_for_inference, serve  # noqa: E402

#: Environment variable naming a module whose ``import_effdet()`` imports effdet.
ENV_PRELUDE = 'MMDET_SPINE_EFFDET_PRELUDE'
#: The benchmark's training step uses this optimiser too.
SGD = dict(lr=1e-5, momentum=0.9)


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
    p.add_argument('--compile', action='store_true',
                   help='torch.compile with inductor freezing (inference only)')
    p.add_argument('--channels-last', action='store_true', help='NHWC model and input')
    p.add_argument('--train', action='store_true',
                   help="time DetBenchTrain's training step (labeler included) instead")
    p.add_argument('--serve', action='store_true', help='answer JSON requests on stdin')
    args = p.parse_args(argv)
    if args.train and args.compile:
        p.error('--compile times inference; the training step runs eagerly')
    return args


def effdet_targets(targets, device) -> dict:
    """The benchmark's ground truths as effdet's loader gives them to ``DetBenchTrain``:
    ``bbox`` [B, N, 4] pixel yxyx, ``cls`` [B, N] 1-based."""
    boxes = torch.tensor([t['boxes_xyxy'] for t in targets], dtype=torch.float32)
    labels = torch.tensor([t['labels'] for t in targets], dtype=torch.float32)
    return dict(bbox=boxes[..., [1, 0, 3, 2]].to(device), cls=(labels + 1).to(device))


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
    net = effdet.create_model_from_config(config, pretrained=False, pretrained_backbone=False)
    net = net.to(device)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in net.parameters())

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    if args.train:
        bench = effdet.DetBenchTrain(net, create_labeler=True).train()
        optim = torch.optim.SGD([p for p in bench.parameters() if p.requires_grad], **SGD)
        info = dict(mode='eager', scope='training step: DetBenchTrain forward + anchor labels '
                    '+ loss, backward, SGD', labeler_in_step=True,
                    options=dict(channels_last=args.channels_last, sgd=SGD))

        def step(inputs):
            x, target = inputs
            optim.zero_grad(set_to_none=True)
            bench(x, target)['loss'].backward()
            optim.step()
    else:
        net.eval()
        model = compile_for_inference(net) if args.compile else net
        info = dict(mode='compiled' if args.compile else 'eager',
                    scope='network (backbone + BiFPN + class/box nets, no NMS)',
                    options=dict(channels_last=args.channels_last,
                                 inductor_freezing=args.compile))

        def step(x):
            with torch.no_grad():
                model(x)

    def run(inputs) -> float:
        sync()
        start = time.perf_counter()
        step(inputs)
        sync()
        return time.perf_counter() - start

    def make_input(batch, targets=None):
        g = torch.Generator().manual_seed(batch)
        x = torch.randn(batch, 3, *args.size, generator=g).to(device).contiguous(
            memory_format=fmt)
        if args.train:
            if targets is None or len(targets) != batch:
                raise SystemExit(f'--train needs {batch} targets, got {targets!r:.80}')
            x = (x, effdet_targets(targets, device))
        run(x)  # untimed (compiles with --compile)
        return x

    name = f"effdet {version('effdet')} {args.name}"
    ready = dict(params=params, name=name, runs={info['mode']: info})
    if not args.serve:
        print(json.dumps(dict(ready=1, **ready)))
        targets = [dict(boxes_xyxy=[[8, 8, 64, 64]], labels=[0])] if args.train else None
        print(json.dumps(dict(seconds=run(make_input(1, targets)))))
        return 0
    return serve(ready, make_input, {info['mode']: run})


if __name__ == '__main__':
    sys.exit(main())
