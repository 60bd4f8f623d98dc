"""The reference side of ``benchmark.py --compare``: a JSON-lines timing server.

A reference implementation (TF Model Garden SpineNet in ``.venv-tf``, effdet behind the test
suite's torchvision stand-in) runs in its own process and answers the benchmark on stdin /
stdout: it prints ``ready`` (a dict with ``"ready": 1``, ``params`` and ``name``) once built,
then answers ``{"batch": B}`` (new input, one untimed call; replies ``{"batch": B}``),
``{"run": 1}`` (one timed call; replies ``{"seconds": s}``) and ``{"quit": 1}``. Only the
standard library is used, so both environments can import it.
"""
import json
import sys
from typing import Any, Callable, TextIO


def serve(ready: dict, make_input: Callable[[int], Any], run: Callable[[Any], float],
          stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    """Announce ``ready`` and answer requests until ``quit`` or end of input.

    Args:
        ready (dict): The first line (``params``, ``name``, ...); ``"ready": 1`` is added.
        make_input (callable): Batch size -> input, after one untimed call on it.
        run (callable): Input -> seconds of one timed call.
    """
    print(json.dumps(dict(ready=1, **ready)), file=stdout, flush=True)
    x = None
    for line in stdin:
        msg = json.loads(line)
        if 'quit' in msg:
            break
        if 'batch' in msg:
            x = make_input(int(msg['batch']))
            reply = dict(batch=int(msg['batch']))
        else:
            reply = dict(seconds=run(x))
        print(json.dumps(reply), file=stdout, flush=True)
    return 0
