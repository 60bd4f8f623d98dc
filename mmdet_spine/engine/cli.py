"""What ``tools/train.py`` and ``tools/test.py`` share: config loading and clear errors."""
import argparse
import contextlib
import os.path as osp
import sys
from typing import Optional

from mmengine.config import Config

from .checkpoint_safety import safe_torch_load


class UserError(RuntimeError):
    """An error in the user's input, reported as one line without a traceback."""


def load_config(path: str, cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None) -> Config:
    """Load ``path``, merge ``--cfg-options`` and settle ``work_dir`` (CLI > file > name)."""
    if not osp.isfile(path):
        raise UserError(f'Config file not found: {path}')
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
        raise UserError(msg.strip("'\"") + hint) from None


def check_resume_checkpoint(path: str) -> None:
    """Fail early and clearly when ``--resume PATH`` names something that cannot be resumed."""
    if path.startswith(('http://', 'https://', 'zoo://')):
        return
    if not osp.isfile(path):
        raise UserError(f'--resume: checkpoint not found: {path}')
    ckpt = safe_torch_load(path, map_location='cpu')
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt or 'meta' not in ckpt:
        raise UserError(f'--resume: {path} is not an mmengine training checkpoint (it has no '
                        "'meta'/'state_dict'); to start from its weights use "
                        f'--cfg-options load_from={path} instead')


def run_cli(main) -> None:
    """Run ``main()``; a :class:`UserError` or a refused checkpoint becomes one line, exit 2;
    a deliberately stopped run (:class:`TrainingAborted`, e.g. a NaN loss) one line, exit 1."""
    from .checkpoint_safety import CheckpointSafetyError
    from .nonfinite_loss import TrainingAborted
    try:
        main()
    except (UserError, CheckpointSafetyError) as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)
    except TrainingAborted as e:  # e.g. a NaN loss: the run itself failed, exit 1
        print(f'error: {e}', file=sys.stderr)
        sys.exit(1)


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
