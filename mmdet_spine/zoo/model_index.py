"""The model zoo's index: ``model-index.yml`` and the ``configs/*/metafile.yml`` it imports.

The files follow OpenMMLab's model-index schema (what ``mim`` and mmdet read: ``Collections``,
``Models`` with ``Name``, ``In Collection``, ``Config``, ``Metadata``, ``Results``,
``Weights``). Each model that has published weights also carries an ``Upstream`` block saying
where the weights come from and how they become ours::

    Upstream:
      Source: <the public file that publishes the URL>
      Format: effdet-pytorch | mmdet | tf-model-garden | tf-tpu-legacy | automl-tf
      SHA256: '<full sha256 or the published prefix>'  # quoted; null where none is published
      Converter: effdet2mmdet | spinenet_tf2mmdet | tpu_legacy2mmdet | null
      Converter Args: {num_classes: 80}
      Converter Note: <why there is none, or what it does not convert yet>
      Cfg Options: {model.backbone.padding_mode: tf_same}  # to evaluate the converted weights

The repository's ``model-index.yml`` is always read; ``MMDET_SPINE_ZOO_INDEX`` (paths joined
by ``os.pathsep``) adds more index files, whose models override same-named ones. ``Config``
paths are relative to the directory of the index file that imported them.
"""
import difflib
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import yaml

from ..converters import CONVERTERS  # converter name -> the upstream format it reads
from ..errors import ZooError

__all__ = ['ZooError', 'ZooModel', 'ENV_INDEX', 'FORMATS', 'CONVERTERS', 'default_index_path',
           'index_paths', 'load_model_index', 'get_model']

#: Environment variable naming extra model-index files (``os.pathsep``-separated).
ENV_INDEX = 'MMDET_SPINE_ZOO_INDEX'
#: Upstream file formats the zoo knows.
FORMATS = ('mmdet', 'effdet-pytorch', 'tf-model-garden', 'tf-tpu-legacy', 'automl-tf')

_HEX = re.compile(r'[0-9a-fA-F]{8,64}')
_PACKAGE_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@dataclass
class ZooModel:
    """One ``Models`` entry of a metafile.

    Args:
        name (str): Zoo name (``zoo://<name>``).
        config (str): Absolute path of the config the weights are for.
        collection (str): ``In Collection``.
        metadata (dict): ``Metadata`` (Parameters, FLOPs, Input Size, ...).
        results (list): ``Results`` (the published numbers; see ``results_note``).
        weights (str, optional): The weights URL as published upstream.
        upstream (dict): The ``Upstream`` block (empty for a model without weights).
        results_note (str, optional): Where ``results`` come from.
        metafile (str): The metafile that defines the entry.
    """
    name: str
    config: str
    collection: str = ''
    metadata: Dict[str, Any] = field(default_factory=dict)
    results: List[Dict[str, Any]] = field(default_factory=list)
    weights: Optional[str] = None
    upstream: Dict[str, Any] = field(default_factory=dict)
    results_note: Optional[str] = None
    metafile: str = ''

    @property
    def url(self) -> Optional[str]:
        """The upstream download URL (``Weights``)."""
        return self.weights

    @property
    def sha256(self) -> Optional[str]:
        """The published sha256 (or its published prefix), lower case; None if unpublished."""
        value = self.upstream.get('SHA256')
        return str(value).lower() if value else None

    @property
    def format(self) -> str:
        """The upstream file format (one of :data:`FORMATS`)."""
        return self.upstream.get('Format', 'mmdet')

    @property
    def converter(self) -> Optional[str]:
        """The converter that turns the upstream file into ours (None: not available yet)."""
        return self.upstream.get('Converter')

    @property
    def converter_args(self) -> Dict[str, Any]:
        """Keyword arguments for the converter."""
        return dict(self.upstream.get('Converter Args') or {})

    @property
    def converter_note(self) -> Optional[str]:
        """What the converter does not do (yet), or why there is none."""
        return self.upstream.get('Converter Note')

    @property
    def cfg_options(self) -> Dict[str, Any]:
        """``--cfg-options`` the converted weights need on top of the config (e.g. TF 'SAME'
        padding for TF-trained weights)."""
        return dict(self.upstream.get('Cfg Options') or {})

    @property
    def alias_of(self) -> Optional[str]:
        """The zoo name whose (identical) weights this entry stands for, e.g. google/automl's
        TF checkpoint rows, whose weights the effdet rows carry; None for a real entry."""
        return self.upstream.get('Alias Of')

    @property
    def needs_tensorflow(self) -> bool:
        """True when converting needs a TensorFlow interpreter (``--tf-python``)."""
        return self.converter in ('spinenet_tf2mmdet', 'tpu_legacy2mmdet')

    @property
    def box_ap(self) -> Optional[float]:
        """The published COCO box AP, if any."""
        for result in self.results:
            metrics = result.get('Metrics') or {}
            if 'box AP' in metrics:
                return metrics['box AP']
        return None


def default_index_path() -> str:
    """The ``model-index.yml`` of this install.

    A source checkout has it next to the ``mmdet_spine`` package; a wheel carries it (with the
    configs it names) in ``mmdet_spine/.mim/``, where ``mim`` looks too.
    """
    in_checkout = osp.join(_PACKAGE_ROOT, 'model-index.yml')
    if osp.isfile(in_checkout):
        return in_checkout
    return osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim', 'model-index.yml')


def index_paths() -> List[str]:
    """Index files to read: the repository's, then those in ``$MMDET_SPINE_ZOO_INDEX``."""
    paths = [default_index_path()]
    extra = os.environ.get(ENV_INDEX, '')
    paths += [p for p in extra.split(os.pathsep) if p]
    return paths


def _read_yaml(path: str) -> Any:
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except OSError as e:
        raise ZooError(f'cannot read model index {path}: {e.strerror}') from None
    except yaml.YAMLError as e:
        raise ZooError(f'{path} is not valid YAML: {str(e).splitlines()[0]}') from None


def _check_model(entry: Dict[str, Any], metafile: str) -> None:
    name = entry.get('Name')
    if not name:
        raise ZooError(f'{metafile}: a model has no Name')
    if not entry.get('Config'):
        raise ZooError(f'{metafile}: model {name} has no Config')
    upstream = entry.get('Upstream') or {}
    if upstream and not entry.get('Weights'):
        raise ZooError(f'{metafile}: model {name} has an Upstream block but no Weights URL')
    sha = upstream.get('SHA256')
    if sha is not None and not (isinstance(sha, str) and _HEX.fullmatch(sha)):
        raise ZooError(f'{metafile}: model {name}: Upstream.SHA256={sha!r} is not a sha256 (a '
                       'string of 8 to 64 hex digits, or null when none is published); quote '
                       "it in the YAML: unquoted, 000...0 reads as the number 0 and 01234567 "
                       'as an octal number')
    fmt = upstream.get('Format', 'mmdet')
    if fmt not in FORMATS:
        raise ZooError(f'{metafile}: model {name}: Upstream.Format={fmt!r}; valid: '
                       f'{", ".join(FORMATS)}')
    if upstream.get('Alias Of') is not None and upstream.get('Converter') is not None:
        raise ZooError(f'{metafile}: model {name}: an alias (Upstream.Alias Of) has no '
                       'Converter of its own')
    conv = upstream.get('Converter')
    if conv is not None and CONVERTERS.get(conv) != fmt:
        raise ZooError(f'{metafile}: model {name}: Upstream.Converter={conv!r} does not read '
                       f'{fmt!r}; valid: ' + ', '.join(f'{c} ({f})' for c, f in
                                                      CONVERTERS.items()))


def _models_of(metafile: str, root: str) -> List[ZooModel]:
    data = _read_yaml(metafile) or {}
    models = []
    for entry in data.get('Models') or []:
        _check_model(entry, metafile)
        models.append(ZooModel(
            name=entry['Name'], config=osp.normpath(osp.join(root, entry['Config'])),
            collection=entry.get('In Collection', ''), metadata=entry.get('Metadata') or {},
            results=entry.get('Results') or [], weights=entry.get('Weights'),
            upstream=entry.get('Upstream') or {}, results_note=entry.get('Results Note'),
            metafile=metafile))
    return models


def load_model_index(paths: Optional[List[str]] = None) -> Dict[str, ZooModel]:
    """Read the index files and their metafiles into ``{name: ZooModel}``.

    Args:
        paths (list[str], optional): Index files; default :func:`index_paths`. A missing
            default (repository) index is skipped; a missing extra index is an error.
    """
    paths = index_paths() if paths is None else paths
    models: Dict[str, ZooModel] = {}
    for i, path in enumerate(paths):
        if i == 0 and paths[0] == default_index_path() and not osp.isfile(path):
            continue
        root = osp.dirname(osp.abspath(path))
        index = _read_yaml(path) or {}
        files = [osp.join(root, p) for p in index.get('Import') or []]
        found = [m for f in files for m in _models_of(f, root)]
        if index.get('Models'):
            found += _models_of(path, root)
        seen = set()
        for m in found:
            if m.name in seen:
                raise ZooError(f'zoo name {m.name!r} is defined twice in {path} and its imports')
            seen.add(m.name)
            models[m.name] = m
    return models


def get_model(name: str, models: Optional[Dict[str, ZooModel]] = None) -> ZooModel:
    """The zoo entry called ``name``.

    Raises:
        ZooError: Unknown name; the message lists the closest names.
    """
    models = load_model_index() if models is None else models
    if name in models:
        return models[name]
    close = difflib.get_close_matches(name, list(models), n=5, cutoff=0.5)
    hint = (f'; did you mean: {", ".join(close)}?' if close else
            '; run `python tools/zoo.py list` to see them')
    raise ZooError(f'unknown zoo name {name!r} ({len(models)} models in the zoo){hint}')
