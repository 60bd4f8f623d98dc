"""The metafiles: valid for OpenMMLab's model-index loader (what ``mim`` reads), complete for
every COCO config, sources recorded, published numbers marked, complexity numbers true."""
import glob
import os.path as osp
import re
from urllib.parse import urlparse

import pytest

from helpers import REPO
from mmdet_spine.zoo import load_model_index
from mmdet_spine.zoo.model_index import default_index_path

FAMILIES = ('efficientdet', 'spinenet', 'spineresnet')


def _complexity():
    from mmdet_spine.analysis import complexity
    return complexity


@pytest.fixture(scope='module')
def zoo():
    return load_model_index([default_index_path()])


def test_model_index_loads_with_openmmlab_model_index_package(zoo):
    import modelindex
    mi = modelindex.load(osp.join(REPO, 'model-index.yml'))
    mi.build_models_with_collections()
    assert mi.check(silent=True) == []
    assert sorted(m.name for m in mi.models) == sorted(zoo)
    assert {c.name for c in mi.collections} == {m.collection for m in zoo.values()}
    d0 = next(m for m in mi.models if m.name == 'efficientdet-d0_effdet')
    assert d0.metadata.parameters == 3874217 and d0.results[0].metrics == {'box AP': 34.3}
    assert d0.weights.endswith('/v0.1/tf_efficientdet_d0_34-f153e0cf.pth')


def test_installed_package_carries_the_mim_files(zoo):
    """mim reads ``<package>/.mim/model-index.yml``; setup.py links (editable) or copies it."""
    import mmdet_spine
    import modelindex
    mim_dir = osp.join(osp.dirname(mmdet_spine.__file__), '.mim')
    for name in ('configs', 'tools', 'model-index.yml'):
        assert osp.exists(osp.join(mim_dir, name)), f'{name} missing from {mim_dir}'
    mi = modelindex.load(osp.join(mim_dir, 'model-index.yml'))
    mi.build_models_with_collections()
    assert sorted(m.name for m in mi.models) == sorted(zoo)
    assert all(osp.isfile(osp.join(mim_dir, m.config)) for m in mi.models)


def test_every_coco_config_is_in_the_zoo(zoo):
    configs = {osp.relpath(m.config, REPO) for m in zoo.values()}
    for family in FAMILIES:
        for path in glob.glob(osp.join(REPO, 'configs', family, '*_coco*.py')):
            assert osp.relpath(path, REPO) in configs, f'{path} has no metafile entry'
    for m in zoo.values():
        assert osp.isfile(m.config), f'{m.name}: {m.config} does not exist'
        assert m.metadata['Training Data'] == 'COCO'
        size = re.search(r'_coco-(\d+)\.py$', m.config)
        if size:
            assert m.metadata['Input Size'] == int(size.group(1)), m.name


def test_weights_have_sources_and_published_numbers_are_marked(zoo):
    hosts = {'github.com', 'storage.googleapis.com', 'storage.cloud.google.com'}
    with_weights = [m for m in zoo.values() if m.url]
    # 30 EfficientDet (9 automl; effdet: 9, 6 Det-AdvProp, 6 Lite), 4 TF Model Garden, 9 TPU
    assert len(with_weights) == 43
    for m in with_weights:
        assert urlparse(m.url).scheme == 'https' and urlparse(m.url).netloc in hosts, m.url
        assert m.upstream['Source'], m.name
        if m.format == 'effdet-pytorch':  # effdet's file names carry a sha256 prefix
            assert m.url.endswith(f'-{m.sha256}.pth') and len(m.sha256) == 8
        if m.converter is None:
            assert m.converter_note, f'{m.name}: say why there is no converter'
    for m in zoo.values():
        if m.results:
            assert 'not measured here' in m.results_note, m.name
    assert {m.name for m in zoo.values() if m.converter == 'effdet2mmdet'} == \
        {f'efficientdet-d{v}_effdet' for v in ('0', '1', '2', '3', '4', '5', '6', '7', '7x')} | \
        {f'efficientdet-d{v}-ap_effdet' for v in range(6)} | \
        {f'efficientdet-lite{v}_effdet' for v in ('0', '1', '2', '3', '3x', '4')}


def test_flops_of_a_small_model_match_the_metafile(zoo):
    m = zoo['retinanet_spinenet-mobile-49xs_32xb8-lsj-500e_coco-256']
    assert _complexity().count_flops(m.config, m.metadata['Input Size']) == m.metadata['FLOPs']


@pytest.mark.slow
def test_parameters_of_every_model_match_the_metafile(zoo):
    mc = _complexity()
    counted = {}
    for m in zoo.values():
        if m.config not in counted:
            counted[m.config] = mc.count_parameters(mc.build_detector(m.config, 'meta'))
        assert counted[m.config] == m.metadata['Parameters'], m.name
