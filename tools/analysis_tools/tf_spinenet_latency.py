"""Latency of TF Model Garden's SpineNet backbone (``tf.function``, inference); runs in .venv-tf.

The reference side of ``tools/analysis_tools/benchmark.py --compare`` for SpineNet configs.
The model is built by the converter's TF stage (``mmdet_spine/converters/tf_model_garden_reader.py``, ``tf_build_spinenet``)
(random init; timing does not depend on the values) and called as
``tf.function(lambda x: model(x, training=False))`` on a random NHWC input.

Modes:

- ``--runs N``: warm up, time N calls, print one JSON line with every duration;
- ``--serve``: answer the benchmark's JSON lines on stdin (``latency_worker.py``): each
  ``{"batch": B}`` traces a new input once, untimed; each ``{"run": 1}`` is one timed call.
  The benchmark alternates these calls with its own runs.

Usage::

    .venv-tf/bin/python tools/analysis_tools/tf_spinenet_latency.py --arch 49 --size 640 \\
        --activation swish --runs 10 --threads 2
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

_HERE = osp.dirname(osp.abspath(__file__))
#: The converter's TF stage, which builds TF SpineNet: in a checkout under
#: <repo>/mmdet_spine/converters/, in an install under mmdet_spine/converters/ next to .mim/.
READERS = [osp.join(osp.dirname(osp.dirname(_HERE)), 'mmdet_spine', 'converters',
                    'tf_model_garden_reader.py'),
           osp.join(osp.dirname(osp.dirname(osp.dirname(_HERE))), 'converters',
                    'tf_model_garden_reader.py')]


def load_converter():
    """The converter's TF stage as a module (stdlib + numpy + TF; it builds TF SpineNet)."""
    path = next((p for p in READERS if osp.isfile(p)), READERS[0])
    spec = importlib.util.spec_from_file_location('tf_model_garden_reader', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None):
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--arch', default='49', help='49S, 49, 96, 143, 143L or 190')
    p.add_argument('--min-level', type=int, default=3)
    p.add_argument('--max-level', type=int, default=7)
    p.add_argument('--activation', default='swish', choices=('relu', 'swish'))
    p.add_argument('--size', default='640', help='N or HxW')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--threads', type=int, default=0,
                   help='intra-op threads (0: TF default); inter-op stays TF default')
    p.add_argument('--runs', type=int, default=10)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--serve', action='store_true', help='answer JSON requests on stdin')
    args = p.parse_args(argv)
    parts = [int(v) for v in args.size.lower().split('x')]
    args.size = tuple(parts * 2 if len(parts) == 1 else parts)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np
    import tensorflow as tf
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    model, _ = load_converter().tf_build_spinenet(
        args.arch, args.min_level, args.max_level, activation=args.activation,
        input_size=args.size)
    infer = tf.function(lambda x: model(x, training=False))
    rng = np.random.default_rng(0)

    def make_input(batch):
        x = tf.constant(rng.normal(size=(batch, *args.size, 3)).astype(np.float32))
        infer(x)  # trace
        return x

    def run(x) -> float:
        start = time.perf_counter()
        infer(x)
        return time.perf_counter() - start

    params = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    x = make_input(args.batch)
    if not args.serve:
        for _ in range(args.warmup):
            run(x)
        times = [run(x) for _ in range(args.runs)]
        print(json.dumps(dict(params=params, tensorflow=tf.__version__, seconds=times)))
        return 0
    from latency_worker import serve  # beside this script
    return serve(dict(params=params, tensorflow=tf.__version__,
                      name=f'TF Model Garden SpineNet-{args.arch} (TF {tf.__version__})'),
                 make_input, run)


if __name__ == '__main__':
    sys.exit(main())
