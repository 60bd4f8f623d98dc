"""Fetch a zoo model: download the upstream weights, verify, convert, cache.

``fetch(name)`` is what ``python tools/zoo.py fetch NAME`` and the ``zoo://NAME`` checkpoint
scheme run. Per upstream format:

* ``mmdet``: already ours; checked to load with ``weights_only=True``, then cached.
* ``effdet-pytorch`` (rwightman's ports of google/automl's EfficientDet): loaded with
  ``weights_only=True`` and mapped by ``tools/model_converters/effdet2mmdet.py``.
* ``tf-model-garden`` (``tar.gz`` of a TF2 checkpoint): extracted with a filter that refuses
  links and paths outside the target directory, then read by TensorFlow's own checkpoint
  reader in ``tools/model_converters/spinenet_tf2mmdet.py``, run by a TensorFlow interpreter
  (``--tf-python``, ``$MMDET_SPINE_TF_PYTHON`` or ``<repo>/.venv-tf/bin/python``).
* ``tf-tpu-legacy`` and ``automl-tf``: listed with their URLs; no converter yet.

Nothing downloaded is ever unpickled without ``weights_only=True``.
"""
import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import sys
import tarfile
import tempfile
from typing import Any, Dict, Optional

import torch

from ..engine.checkpoint_safety import CheckpointSafetyError, safe_torch_load
from .cache import find_cached, store_converted, verified_download
from .model_index import ZooError, ZooModel, get_model

__all__ = ['fetch', 'cached_or_fetch', 'resolve_tf_python', 'safe_extract', 'ENV_TF_PYTHON']

#: Environment variable naming a Python with TensorFlow + tf-models-official.
ENV_TF_PYTHON = 'MMDET_SPINE_TF_PYTHON'
_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_CONVERTERS_DIR = osp.join(_REPO, 'tools', 'model_converters')


def resolve_tf_python(tf_python: Optional[str] = None) -> str:
    """The TensorFlow interpreter: ``tf_python``, else ``$MMDET_SPINE_TF_PYTHON``, else
    ``<repo>/.venv-tf/bin/python`` if it exists.

    Raises:
        ZooError: None of them is an existing file.
    """
    for candidate, origin in ((tf_python, '--tf-python'),
                              (os.environ.get(ENV_TF_PYTHON), f'${ENV_TF_PYTHON}')):
        if candidate:
            if not osp.isfile(candidate):
                raise ZooError(f'{origin}={candidate}: no such interpreter')
            return candidate
    default = osp.join(_REPO, '.venv-tf', 'bin', 'python')
    if osp.isfile(default):
        return default
    raise ZooError('converting a TensorFlow checkpoint needs a Python with tensorflow and '
                   f'tf-models-official: pass --tf-python PATH or set {ENV_TF_PYTHON} '
                   '(`make setup-test` builds one in .venv-tf)')


def _converter_module(name: str):
    path = osp.join(_CONVERTERS_DIR, f'{name}.py')
    if not osp.isfile(path):
        raise ZooError(f'converter {name} not found at {path} (the zoo converts with the '
                       "repository's tools/model_converters; use an editable install)")
    spec = importlib.util.spec_from_file_location(f'mmdet_spine_zoo_{name}', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def safe_extract(archive: str, dst: str) -> None:
    """Extract a tar archive into ``dst``, refusing links, devices and paths outside ``dst``.

    Raises:
        ZooError: The archive holds anything but regular files and directories inside ``dst``.
    """
    try:
        with tarfile.open(archive, 'r:*') as tar:
            for m in tar.getmembers():
                if not (m.isfile() or m.isdir()):
                    raise ZooError(f'{archive}: refusing to extract {m.name!r} (not a regular '
                                   'file or directory)')
            try:
                tar.extractall(dst, filter='data')
            except tarfile.FilterError as e:
                raise ZooError(f'{archive}: refusing to extract: {e}') from None
    except (tarfile.TarError, EOFError) as e:
        raise ZooError(f'{archive} is not a readable tar archive ({e})') from None


def _find_tf_checkpoint(root: str) -> str:
    """The directory holding the (first) TF checkpoint ``*.index`` under ``root``."""
    for dirpath, _, files in sorted(os.walk(root)):
        if any(f.endswith('.index') for f in files):
            return dirpath
    raise ZooError(f'no TensorFlow checkpoint (*.index) in the archive extracted to {root}')


def _cli_args(args: Dict[str, Any]):
    out = []
    for key, value in args.items():
        flag = '--' + key.replace('_', '-')
        if value is True:
            out.append(flag)
        elif value not in (False, None):
            out += [flag, str(value)]
    return out


def _convert(model: ZooModel, raw: str, out: str, tf_python: Optional[str],
             progress: bool = False) -> None:
    if progress and model.converter:
        print(f'converting {osp.basename(raw)} with {model.converter}', file=sys.stderr)
    meta = {'zoo_name': model.name, 'upstream_url': model.url, 'converter': model.converter}
    if model.format == 'mmdet':
        safe_torch_load(raw, map_location='cpu')  # refuse anything that is not plain weights
        shutil.copyfile(raw, out)
    elif model.converter == 'effdet2mmdet':
        mod = _converter_module('effdet2mmdet')
        try:
            state = mod.load_effdet_state_dict(raw)  # torch.load(weights_only=True)
        except Exception as e:
            raise CheckpointSafetyError(f'{raw}: not a loadable effdet checkpoint ({e})') from None
        torch.save({'state_dict': mod.convert(state, **model.converter_args), 'meta': meta}, out)
    elif model.converter == 'spinenet_tf2mmdet':
        python = resolve_tf_python(tf_python)
        with tempfile.TemporaryDirectory(prefix='zoo-tf-') as tmp:
            safe_extract(raw, tmp)
            ckpt = _find_tf_checkpoint(tmp)
            cmd = [sys.executable, osp.join(_CONVERTERS_DIR, 'spinenet_tf2mmdet.py'), ckpt, out,
                   *_cli_args(model.converter_args), '--tf-python', python]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['']
                raise ZooError(f'converting {model.name} failed: {" ".join(cmd)}: {tail[0]}')
    else:
        raise ZooError(f'{model.name}: no converter for {model.format} weights')


def fetch(name: str, tf_python: Optional[str] = None, progress: bool = True,
          keep_download: bool = False) -> str:
    """Return the path of zoo model ``name``'s converted checkpoint, making it if needed.

    Args:
        name (str): Zoo name.
        tf_python (str, optional): TensorFlow interpreter for TF checkpoints.
        progress (bool): Progress bar for the download.
        keep_download (bool): Keep the upstream file in the cache after converting.

    Raises:
        ZooError: Unknown name, no weights or no converter, download or checksum failure.
    """
    model = get_model(name)
    cached = find_cached(name)
    if cached:
        return cached
    if not model.url:
        raise ZooError(f'{name} has no published weights (config {model.config}); train it '
                       'with tools/train.py')
    if model.converter is None and model.format != 'mmdet':
        note = f' ({model.converter_note})' if model.converter_note else ''
        raise ZooError(f'{name}: no converter for {model.format} weights yet{note}; the '
                       f'upstream file is {model.url}')
    if model.needs_tensorflow:
        resolve_tf_python(tf_python)  # fail before a long download
    raw = verified_download(model.url, model.sha256, progress=progress)
    fd, out = tempfile.mkstemp(prefix=f'.{name}.', suffix='.pth.tmp', dir=osp.dirname(raw))
    os.close(fd)
    try:
        try:
            _convert(model, raw, out, tf_python, progress)
        except CheckpointSafetyError:
            os.remove(raw)  # never keep a file that was refused
            raise
        path = store_converted(name, out)
    finally:
        if osp.exists(out):
            os.remove(out)
    if not keep_download:
        os.remove(raw)
    return path


def cached_or_fetch(name: str, progress: bool = True) -> str:
    """:func:`fetch` that needs no network when the converted checkpoint is cached."""
    return find_cached(name) or fetch(name, progress=progress)
