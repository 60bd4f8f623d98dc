"""The reference side of ``benchmark.py --compare``: a JSON-lines timing server.

A reference implementation (TF Model Garden SpineNet or RetinaNet in ``.venv-tf``, effdet
behind a torchvision stand-in) runs in its own process and answers the benchmark on stdin /
stdout. Protocol:

- the worker prints ``ready`` once built: ``{"ready": 1, "params": ..., "name": ...,
  "runs": {RUN: {"mode": ..., ...}, ...}}``; ``runs`` names every function it can time and
  the mode each runs in (``eager``, ``compiled``, ``tf.function``, ``tf.jit_compile``), with
  its options;
- ``{"batch": B}`` or ``{"batch": B, "targets": [...]}``: a new input of batch B (training
  workers: with these ground truths, one per image, as ``{"boxes_xyxy": [[x0, y0, x1, y1],
  ...], "labels": [0-based class, ...]}`` in input pixels; each worker converts them to its
  reference's conventions), then one untimed call of every run; replies ``{"batch": B}``;
- ``{"run": RUN}``: one timed call of that run (``{"run": 1}``: the first); replies
  ``{"seconds": s}``;
- ``{"quit": 1}``.

Only the standard library is imported at module level, so both environments can import it;
``compile_for_inference`` imports torch when called.
"""
import argparse
import json
import sys
from typing import Any, Callable, Dict, TextIO, Union


def tf_spinenet_parser(description: str, batch: int, runs: int,
                       warmup: int) -> argparse.ArgumentParser:
    """The command line every TF Model Garden SpineNet worker takes (the backbone's arch,
    levels and activation, input size, threads, runs, ``--serve``); a worker adds its own
    arguments and parses with :func:`parse_tf_spinenet_args`."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument('--arch', default='49', help='49S, 49, 96, 143, 143L or 190')
    p.add_argument('--min-level', type=int, default=3)
    p.add_argument('--max-level', type=int, default=7)
    p.add_argument('--activation', default='swish', choices=('relu', 'swish'))
    p.add_argument('--size', default='640', help='N or HxW')
    p.add_argument('--batch', type=int, default=batch, help='batch of the --runs mode')
    p.add_argument('--threads', type=int, default=0,
                   help='intra-op threads (0: TF default); inter-op stays TF default')
    p.add_argument('--runs', type=int, default=runs)
    p.add_argument('--warmup', type=int, default=warmup)
    p.add_argument('--serve', action='store_true', help='answer JSON requests on stdin')
    return p


def parse_tf_spinenet_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse ``argv`` with a :func:`tf_spinenet_parser`; ``size`` becomes ``(H, W)``."""
    args = parser.parse_args(argv)
    parts = [int(v) for v in args.size.lower().split('x')]
    args.size = tuple(parts * 2 if len(parts) == 1 else parts)
    return args


def compile_for_inference(module) -> Callable:
    """``torch.compile(module)`` with inductor's freezing on (inference under no_grad only).

    Freezing treats the weights as constants: conv + BN fold, weights are pre-packed for
    oneDNN and conv + activation become one kernel, which eager PyTorch cannot do. The
    benchmark compiles our model and effdet's with this one function, so that both
    compiled sides of ``--compile --compare`` are compiled alike.
    """
    import torch
    import torch._inductor.config as inductor_config
    inductor_config.freezing = True
    return torch.compile(module)


def serve(ready: dict, make_input: Callable[..., Any],
          run: Union[Callable[[Any], float], Dict[str, Callable[[Any], float]]],
          stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    """Announce ``ready`` and answer requests until ``quit`` or end of input.

    Args:
        ready (dict): The first line (``params``, ``name``, ``runs`` ...); ``"ready": 1`` is
            added.
        make_input (callable): ``make_input(batch)`` or, when the request has targets,
            ``make_input(batch, targets)`` -> the input, after one untimed call of every
            run on it.
        run (callable | dict): Input -> seconds of one timed call; a dict maps run names
            (those of ``ready['runs']``) to such callables, the first being the default.
    """
    runs = run if isinstance(run, dict) else {'default': run}
    first = next(iter(runs))
    print(json.dumps(dict(ready=1, **ready)), file=stdout, flush=True)
    x = None
    for line in stdin:
        msg = json.loads(line)
        if 'quit' in msg:
            break
        if 'batch' in msg:
            batch = int(msg['batch'])
            x = make_input(batch, msg['targets']) if 'targets' in msg else make_input(batch)
            reply = dict(batch=batch)
        else:
            name = msg['run'] if isinstance(msg['run'], str) else first
            reply = dict(seconds=runs[name](x))
        print(json.dumps(reply), file=stdout, flush=True)
    return 0
