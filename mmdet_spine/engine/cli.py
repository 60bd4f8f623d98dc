"""What ``tools/train.py`` and ``tools/test.py`` share: config loading and one-line errors.

:func:`run_cli` runs a tool's ``main``: bad input (any :class:`~mmdet_spine.errors.UserError`,
also when a library re-raised it as its own type or wrapped it) is printed as ONE line,
``error: <message>``, exit code 2; a run that stopped itself
(:class:`~mmdet_spine.errors.TrainingAborted`, e.g. a NaN loss) one line, exit code 1. Set
``MMDET_SPINE_TRACEBACK=1`` or pass ``--traceback`` to see the full traceback instead.
"""
import argparse
import contextlib
import os
import os.path as osp
import re
import sys
import traceback
from typing import Optional, Tuple

from mmengine.config import Config

from ..errors import (TRACEBACK_ENV, CheckpointIntegrityError, TrainingAborted, UserError)
from ..fileio import safe_torch_load

__all__ = ['UserError', 'load_config', 'registry_hint', 'check_cfg_options',
           'check_resume_checkpoint', 'run_cli',
           'one_line_error', 'parse_size', 'TRACEBACK_FLAG']

#: Command-line flag of every tool that shows the traceback of a user error.
TRACEBACK_FLAG = '--traceback'
_PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_config(path: str, cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None) -> Config:
    """Load ``path``, merge ``--cfg-options`` and settle ``work_dir`` (CLI > file > name)."""
    if not osp.isfile(path):
        raise UserError(f'Config file not found: {path}')
    check_cfg_options(cfg_options)
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def _imports_mmdet_spine(cfg: Config) -> bool:
    imports = (cfg.get('custom_imports') or {}).get('imports', [])
    imports = [imports] if isinstance(imports, str) else imports
    return any(str(i).split('.')[0] == 'mmdet_spine' for i in imports)


@contextlib.contextmanager
def registry_hint(cfg: Config):
    """Add to mmengine's unknown-``type`` error the usual cause: ``custom_imports``."""
    try:
        yield
    except KeyError as e:
        msg = str(e.args[0]) if e.args else ''
        if 'registry' not in msg or 'is not in the' not in msg:
            raise
        hint = ('' if _imports_mmdet_spine(cfg) else
                " The config does not import mmdet-spine: add custom_imports = dict("
                "imports=['mmdet_spine'], allow_failed_imports=False) and default_scope = 'mmdet'.")
        raise UserError(msg.strip("'\"").split(' More details')[0] + hint) from None


def check_cfg_options(options: Optional[dict]) -> None:
    """Refuse ``--cfg-options`` values that mmengine's parser leaves as the text ``dict(...)``
    (they would reach a builder as a string and fail deep inside it)."""
    def walk(key, value):
        if isinstance(value, (list, tuple)):
            for v in value:
                walk(key, v)
        elif isinstance(value, str) and re.match(r'^\s*dict\s*\(', value):
            raise UserError(f'--cfg-options {key}={value}: dict(...) is not parsed by '
                            '--cfg-options; give nested keys (e.g. model.backbone.arch=49) or '
                            'put the value in a config file')
    for key, value in (options or {}).items():
        walk(key, value)


def check_resume_checkpoint(path: str) -> None:
    """Fail early and clearly when ``--resume PATH`` names something that cannot be resumed.

    The file is verified against its sha256 record (when it has one) and loaded safely; a
    mismatch names the newest checkpoint next to it that does verify.
    """
    if path.startswith(('http://', 'https://', 'zoo://')):
        return
    if not osp.isfile(path):
        raise UserError(f'--resume: checkpoint not found: {path}')
    from .checkpoint_safety import load_local_checkpoint
    try:
        ckpt = load_local_checkpoint(path, map_location='cpu')
    except CheckpointIntegrityError as e:
        from .atomic_checkpoint import find_resumable_checkpoint
        other = find_resumable_checkpoint(osp.dirname(osp.abspath(path)))
        hint = (f'; the newest checkpoint there that verifies is {other} (or use --resume '
                'without a path)' if other and osp.abspath(other) != osp.abspath(path) else '')
        raise CheckpointIntegrityError(f'--resume: {e}{hint}') from None
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt or 'meta' not in ckpt:
        raise UserError(f'--resume: {path} is not an mmengine training checkpoint (it has no '
                        "'meta'/'state_dict'); to start from its weights use "
                        f'--cfg-options load_from={path} instead')


# -- one-line errors ----------------------------------------------------------------------

#: ``class `X` in pkg/mod.py: `` prefixes that builders prepend when they re-raise.
_BUILD_PREFIX = re.compile(r'^class `(\w+)` in [\w/.\-]+\.py: ')


def _chain(e: BaseException):
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)


def _innermost_file(e: BaseException) -> str:
    tb, last = e.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return osp.abspath(last.tb_frame.f_code.co_filename) if last is not None else ''


def _raised_by_us(e: BaseException) -> bool:
    """True when the innermost frame that raised ``e`` is mmdet-spine code (a deliberate
    ``raise ValueError(...)`` with our message, not an error from inside a library)."""
    return _innermost_file(e).startswith(_PACKAGE_DIR + os.sep)


#: A config that passes a class an argument it does not take (a typo such as ``dept=50``),
#: raised where mmengine's registry calls the class.
_BAD_ARGUMENT = re.compile(r"(got an unexpected keyword argument '\w+'|missing \d+ required "
                           r'(positional|keyword-only) arguments?)')


def _bad_config_argument(e: BaseException) -> bool:
    return (isinstance(e, TypeError) and bool(_BAD_ARGUMENT.search(str(e)))
            and _innermost_file(e).endswith(osp.join('mmengine', 'registry',
                                                     'build_functions.py')))


def _message(e: BaseException) -> str:
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    if 'Original Traceback' in text:  # re-raised from a dataloader worker: the last line
        last = lines[-1]
        return last.split(': ', 1)[1] if re.match(r'^[\w.]+(Error|Exception|Aborted): ', last) \
            else last
    line = lines[0]
    classes = []
    while True:
        m = _BUILD_PREFIX.match(line)
        if not m:
            break
        classes.append(m.group(1))
        line = line[m.end():]
    return line + (f' (while building {" > ".join(classes)})' if classes else '')


def one_line_error(e: BaseException) -> Optional[Tuple[int, str]]:
    """``(exit code, message)`` for an exception the tools report as one line, else None.

    Exit code 2 for bad input: a :class:`UserError` anywhere in the exception chain (so also
    when a library re-raised it wrapped), a ``ValueError``/``KeyError``/``TypeError`` raised
    by mmdet-spine code itself, or a config that passes a class an argument it does not take
    (the ``TypeError`` mmengine's registry gets calling it). Exit code 1 for
    :class:`TrainingAborted`.
    """
    for link in _chain(e):
        if isinstance(link, TrainingAborted):
            return 1, _message(e if isinstance(e, TrainingAborted) else link)
        if isinstance(link, UserError):
            return 2, _message(e if isinstance(e, UserError) else link)
    if isinstance(e, (ValueError, KeyError, TypeError)) and _raised_by_us(e):
        return 2, _message(e)
    if _bad_config_argument(e):
        return 2, f'config: {_message(e)}'
    return None


def _wants_traceback() -> bool:
    return (os.environ.get(TRACEBACK_ENV, '').strip().lower() not in ('', '0', 'false', 'no')
            or TRACEBACK_FLAG in sys.argv[1:])


def run_cli(main) -> None:
    """Run ``main()``; user errors become one line on stderr and exit code 2, a deliberately
    stopped run (:class:`TrainingAborted`) one line and exit code 1 (see the module docstring).
    With ``MMDET_SPINE_TRACEBACK=1`` or ``--traceback`` the traceback is printed first.

    In a distributed run a failed collective (a peer rank died or hung) is one line too, and
    under the launcher (``tools/dist_*.sh``) the ranks hand their line to it instead of
    printing (:func:`~mmdet_spine.engine.distributed.record_failure`), so the job reports
    one line naming the rank that failed first and why.
    """
    from .distributed import PEER_LOST, peer_failure, record_failure
    try:
        main()
    except Exception as e:  # noqa: BLE001  (anything not ours is re-raised unchanged)
        verdict, kind = one_line_error(e), None
        if verdict is not None:
            kind = 'user' if verdict[0] == 2 else 'aborted'
        else:
            verdict, kind = peer_failure(e), PEER_LOST
        if verdict is None:
            raise
        code, message = verdict
        verbose = _wants_traceback()
        if verbose:
            traceback.print_exc()
        if record_failure(message, kind, code) and not verbose:
            sys.exit(code)  # the launcher prints the job's one line
        distributed = os.environ.get('WORLD_SIZE', '1') not in ('', '1')
        where = f"[rank {os.environ.get('RANK', '?')}] " if distributed else ''
        print(f'error: {where}{message}', file=sys.stderr)
        sys.exit(code)


def parse_size(text: str):
    """``'640'`` -> (640, 640); ``'512x768'`` -> (512, 768) (H x W)."""
    try:
        parts = [int(p) for p in str(text).lower().split('x')]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f'--input-size {text!r}: give N or HxW (positive ints)')
    return tuple(parts)
