"""Fetch a zoo model: download the upstream weights, verify, convert, cache.

``fetch(name)`` is what ``python tools/zoo.py fetch NAME`` and the ``zoo://NAME`` checkpoint
scheme run. Per upstream format:

* ``mmdet``: already ours; checked to load with ``weights_only=True``, then cached.
* ``effdet-pytorch`` (rwightman's ports of google/automl's EfficientDet): loaded with
  ``weights_only=True`` and mapped by :mod:`mmdet_spine.converters.effdet`.
* ``tf-model-garden`` (``tar.gz`` of a TF2 checkpoint): extracted with a filter that refuses
  links and paths outside the target directory, then read by TensorFlow's own checkpoint
  reader in :mod:`mmdet_spine.converters.tf_model_garden_reader`, run by a TensorFlow
  interpreter (``--tf-python`` or ``$MMDET_SPINE_TF_PYTHON``), and mapped by
  :mod:`mmdet_spine.converters.tf_model_garden`.

Everything comes from the installed package (converters, the index and configs in
``mmdet_spine/.mim/``), so the zoo works from a wheel, outside any checkout.
* ``tf-tpu-legacy`` (``tar.gz`` of a TF1 name-based checkpoint of tensorflow/tpu): extracted
  the same way, listed by :mod:`mmdet_spine.converters.tpu_legacy_reader` in the TensorFlow
  interpreter and mapped by :mod:`mmdet_spine.converters.tpu_legacy`.
* ``automl-tf``: listed with their URLs; no converter yet.

Nothing downloaded is ever unpickled without ``weights_only=True``.
"""
import os
import os.path as osp
import shutil
import sys
import tarfile
import tempfile
from typing import Optional

from ..converters import effdet as effdet_converter
from ..converters import tf_model_garden, tpu_legacy
from ..converters.tf_model_garden import ENV_TF_PYTHON
from ..errors import CheckpointSafetyError, ConverterError
from ..fileio import safe_torch_load
from .cache import find_cached, store_converted, verified_download
from .model_index import ZooError, ZooModel, get_model

__all__ = ['fetch', 'cached_or_fetch', 'resolve_tf_python', 'safe_extract', 'ENV_TF_PYTHON']

def resolve_tf_python(tf_python: Optional[str] = None) -> str:
    """The TensorFlow interpreter: ``tf_python``, else ``$MMDET_SPINE_TF_PYTHON``.

    Raises:
        ZooError: Neither names an existing file; the message says how to make one.
    """
    try:
        return tf_model_garden.resolve_tf_python(tf_python)
    except ConverterError as e:
        raise ZooError(str(e)) from None


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


def _convert(model: ZooModel, raw: str, out: str, tf_python: Optional[str],
             progress: bool = False) -> None:
    if progress and model.converter:
        print(f'converting {osp.basename(raw)} with {model.converter}', file=sys.stderr)
    meta = {'zoo_name': model.name, 'upstream_url': model.url, 'converter': model.converter}
    if model.format == 'mmdet':
        safe_torch_load(raw, map_location='cpu')  # refuse anything that is not plain weights
        shutil.copyfile(raw, out)
    elif model.converter == 'effdet2mmdet':
        effdet_converter.convert_file(raw, out, meta=meta, **model.converter_args)
    elif model.converter in ('spinenet_tf2mmdet', 'tpu_legacy2mmdet'):
        convert = (tf_model_garden.convert_tf_checkpoint if model.converter == 'spinenet_tf2mmdet'
                   else tpu_legacy.convert_tpu_checkpoint)
        python = resolve_tf_python(tf_python)
        with tempfile.TemporaryDirectory(prefix='zoo-tf-') as tmp:
            safe_extract(raw, tmp)
            ckpt = _find_tf_checkpoint(tmp)
            try:
                convert(ckpt, out, tf_python=python, meta=meta, **model.converter_args)
            except ConverterError as e:
                raise ZooError(f'converting {model.name} failed: {e}') from None
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
    if model.alias_of:  # the same weights, published again by another project
        return fetch(model.alias_of, tf_python, progress, keep_download)
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
        except (CheckpointSafetyError, ConverterError):
            os.remove(raw)  # never keep a file that was refused or cannot be converted
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
    alias = get_model(name).alias_of
    return find_cached(alias or name) or fetch(name, progress=progress)
