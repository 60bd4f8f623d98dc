"""Latency of TF Model Garden's SpineNet backbone (graph mode, inference); runs in .venv-tf.

The reference side of ``tools/analysis_tools/benchmark.py --compare`` for SpineNet configs.
The model is built by the converter's TF stage (``mmdet_spine/converters/tf_model_garden_reader.py``, ``tf_build_spinenet``)
(random init; timing does not depend on the values) and called on a random NHWC input in the
modes of ``--modes`` (one model, every mode):

- ``tf.function``: ``tf.function(lambda x: model(x, training=False))``, TF's standard
  inference (graph executor, oneDNN kernels);
- ``tf.jit_compile``: the same with ``jit_compile=True`` (XLA compiles the whole graph).

Requests:

- ``--runs N``: warm up, time N calls of each mode, print one JSON line with every duration;
- ``--serve``: answer the benchmark's JSON lines on stdin (``latency_worker.py``): each
  ``{"batch": B}`` traces (and XLA-compiles) every mode on a new input, untimed; each
  ``{"run": MODE}`` is one timed call. The benchmark alternates these calls with its own
  runs (ours, tf.function, tf.jit_compile, ours, ...).

Usage::

    .venv-tf/bin/python mmdet_spine/analysis/references/tf_spinenet_latency.py --arch 49 --size 640 \\
        --activation swish --runs 10 --threads 2 [--modes tf.function tf.jit_compile]
"""
import importlib.util
import json
import os
import os.path as osp
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

_HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, _HERE)  # latency_worker, also when imported rather than run
from latency_worker import parse_tf_spinenet_args, tf_spinenet_parser  # noqa: E402
#: The converter's TF stage, which builds TF SpineNet: mmdet_spine/converters/, two levels up
#: from here (a checkout and an install alike).
READERS = [osp.join(osp.dirname(osp.dirname(_HERE)), 'converters', 'tf_model_garden_reader.py')]


#: Graph modes: the ``tf.function`` keyword arguments of each.
MODES = {'tf.function': {}, 'tf.jit_compile': dict(jit_compile=True)}


def load_converter():
    """The converter's TF stage as a module (stdlib + numpy + TF; it builds TF SpineNet)."""
    path = next((p for p in READERS if osp.isfile(p)), READERS[0])
    spec = importlib.util.spec_from_file_location('tf_model_garden_reader', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None):
    """Command line (see the module docstring)."""
    p = tf_spinenet_parser(__doc__.split('\n\n')[0], batch=1, runs=10, warmup=2)
    p.add_argument('--modes', nargs='+', default=['tf.function'], choices=MODES,
                   help='graph modes to time (default tf.function)')
    return parse_tf_spinenet_args(p, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np
    import tensorflow as tf
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    model, _ = load_converter().tf_build_spinenet(
        args.arch, args.min_level, args.max_level, activation=args.activation,
        input_size=args.size)
    infer = {mode: tf.function(lambda x: model(x, training=False), **MODES[mode])
             for mode in dict.fromkeys(args.modes)}
    rng = np.random.default_rng(0)

    def make_input(batch):
        x = tf.constant(rng.normal(size=(batch, *args.size, 3)).astype(np.float32))
        for fn in infer.values():
            fn(x)  # trace / compile
        return x

    def runner(fn):
        def run(x) -> float:
            start = time.perf_counter()
            fn(x)  # eager TF runs functions synchronously: the outputs are computed
            return time.perf_counter() - start
        return run

    runs = {mode: runner(fn) for mode, fn in infer.items()}
    params = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    x = make_input(args.batch)
    if not args.serve:
        for run in runs.values():
            for _ in range(args.warmup):
                run(x)
        times = {mode: [run(x) for _ in range(args.runs)] for mode, run in runs.items()}
        print(json.dumps(dict(params=params, tensorflow=tf.__version__, seconds=times)))
        return 0
    from latency_worker import serve  # beside this script
    info = {mode: dict(mode=mode, options=dict(MODES[mode], training=False)) for mode in runs}
    return serve(dict(params=params, tensorflow=tf.__version__, runs=info,
                      name=f'TF Model Garden SpineNet-{args.arch} (TF {tf.__version__})'),
                 make_input, runs)


if __name__ == '__main__':
    sys.exit(main())
