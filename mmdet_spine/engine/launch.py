"""torchrun with one line per failed job: ``python -m mmdet_spine.engine.launch [torchrun args]``.

``tools/dist_train.sh`` and ``tools/dist_test.sh`` start the workers through this module. It
parses and runs exactly what ``torchrun`` (``torch.distributed.run``) would; the only
difference is the report when a worker fails. torchrun prints its agent's log lines and a
framed summary, and every rank its own traceback (34 lines each in a 2-rank job). Here the
ranks write their one-line reason into the error file torchrun gives them
(:func:`mmdet_spine.engine.distributed.record_failure`), torchrun's own log is kept to errors
of the launcher itself, and the job ends with ONE line naming the root cause::

    error: rank 1 (pid 4242) was killed by SIGKILL (signal 9); the other ranks were stopped
    error: rank 0 failed: SpineNet: arch='50' is not a SpineNet architecture; valid choices: ...

The root cause is the rank killed by a signal (other than the SIGTERM the agent sends the
rest) before it recorded a reason, else the rank whose own error stopped it, before ranks that
only lost their connection to it; ties go to the earliest failure. A rank that recorded its
reason and was then stopped on its way out (the agent's SIGTERM reaching it while it exits) is
reported by that reason, not by the signal.
``MMDET_SPINE_TRACEBACK=1`` keeps torchrun's report and the ranks' tracebacks.
"""
import logging
import os
import signal
import sys
from typing import List, Optional, Tuple

from ..errors import TRACEBACK_ENV
from .distributed import PEER_LOST

__all__ = ['main', 'root_cause', 'describe_failure']


def _info(failure) -> dict:
    data = getattr(failure, 'error_file_data', None) or {}
    return data.get('mmdet_spine') or {} if isinstance(data, dict) else {}


def _message(failure) -> str:
    message = getattr(failure, 'message', '')
    if isinstance(message, dict):
        message = message.get('message', '')
    return ' '.join(str(message).split())


def root_cause(failures: dict) -> Tuple[int, object]:
    """``(global rank, ProcessFailure)`` of the failure that explains the others."""
    def priority(item):
        rank, failure = item
        info = _info(failure)
        if not info and failure.exitcode < 0 and -failure.exitcode != signal.SIGTERM:
            order = 0  # killed by a signal (SIGKILL, SIGSEGV, ...): nothing else explains it
        elif info and info.get('kind') != PEER_LOST:
            order = 1  # the rank's own error
        elif not info and failure.exitcode > 0:
            order = 2  # failed without telling us why (a crash, a traceback of its own)
        elif info:
            order = 3  # only lost its connection to another rank
        else:
            order = 4  # SIGTERM: what the agent sends the others once one has failed
        return order, float(info.get('time', failure.timestamp)), rank
    return min(failures.items(), key=priority)


def describe_failure(rank: int, failure) -> str:
    """The one line for the job."""
    stopped = '; the other ranks were stopped'
    message = _message(failure) if _info(failure) else ''
    if message:  # recorded before it exited, even if a signal ended it on its way out
        return f'rank {rank} failed: {message}{stopped}'
    if failure.exitcode < 0:
        return (f'rank {rank} (pid {failure.pid}) was killed by {failure.signal_name()} '
                f'(signal {-failure.exitcode}){stopped}')
    return (f'rank {rank} (pid {failure.pid}) exited with code {failure.exitcode} (its own '
            f'output above says why){stopped}')


def main(argv: Optional[List[str]] = None) -> None:
    """Run torchrun with ``argv`` (default ``sys.argv[1:]``); exit with the failed rank's code."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    verbose = os.environ.get(TRACEBACK_ENV, '').strip().lower() not in ('', '0', 'false', 'no')
    if not verbose:  # the agent's own log lines (restarts, SIGTERMs sent, failure tables)
        logging.getLogger('torch.distributed.elastic').setLevel(logging.CRITICAL)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        run(args)
    except ChildFailedError as e:
        if verbose:
            print(e, file=sys.stderr)
        rank, failure = root_cause(e.failures)
        print(f'error: {describe_failure(rank, failure)}', file=sys.stderr)
        code = _info(failure).get('exit_code') or failure.exitcode
        sys.exit(code if isinstance(code, int) and code > 0 else 1)


if __name__ == '__main__':
    main()
