"""configs/spinenet_cls/metafile.yml: valid for OpenMMLab's model-index loader and ours, one
entry per ImageNet / iNaturalist config, published numbers marked and equal to tensorflow/tpu
MODEL_ZOO.md, Parameters / FLOPs true for our models."""
import glob
import os.path as osp

import pytest
import yaml

from helpers import REPO

METAFILE = osp.join(REPO, 'configs', 'spinenet_cls', 'metafile.yml')
#: tensorflow/tpu models/official/detection/MODEL_ZOO.md: (top-1, top-5, params M, GFLOPs);
#: its params count 1001 classes.
PUBLISHED = {
    'spinenet-49_in1k': (78.1, 94.0, 22.1, 3.5), 'spinenet-96_in1k': (79.4, 94.6, 36.5, 5.7),
    'spinenet-143_in1k': (80.1, 95.0, 60.5, 9.1), 'spinenet-190_in1k': (80.8, 95.3, 127.1, 19.1),
    'spinenet-49-baseline_in1k': (77.0, 93.3, 22.1, 3.5),
    'spinenet-96-baseline_in1k': (78.2, 94.0, 36.5, 5.7),
    'spinenet-143-baseline_in1k': (79.0, 94.4, 60.5, 9.1),
    'spinenet-49_inat2017': (63.3, 85.1, 23.1, 3.5),
}


@pytest.fixture(scope='module')
def models():
    with open(METAFILE) as f:
        return {m['Name']: m for m in yaml.safe_load(f)['Models']}


def test_loads_with_model_index_and_our_zoo_loader(tmp_path):
    import modelindex

    from mmdet_spine.zoo import load_model_index
    index = tmp_path / 'model-index.yml'
    index.write_text(f'Import:\n- {METAFILE}\n')
    mi = modelindex.load(str(index))
    mi.build_models_with_collections()
    assert sorted(m.name for m in mi.models) == sorted(PUBLISHED)
    # ours resolves Config against the index's directory: point it at the repository
    (tmp_path / 'configs').symlink_to(osp.join(REPO, 'configs'))
    (tmp_path / 'm.yml').write_text('Import:\n- configs/spinenet_cls/metafile.yml\n')
    zoo = load_model_index([str(tmp_path / 'm.yml')])
    assert sorted(zoo) == sorted(PUBLISHED)
    for m in zoo.values():
        assert osp.isfile(m.config), m.config


def test_every_recipe_config_has_an_entry_and_numbers_are_published_ones(models):
    configs = {m['Config'] for m in models.values()}
    for path in glob.glob(osp.join(REPO, 'configs', 'spinenet_cls', '*_in1k.py')) + \
            glob.glob(osp.join(REPO, 'configs', 'spinenet_cls', '*_inat2017.py')):
        assert osp.relpath(path, REPO) in configs, f'{path} has no metafile entry'
    assert set(models) == set(PUBLISHED)
    for name, (top1, top5, params_m, gflops) in PUBLISHED.items():
        m = models[name]
        metrics = m['Results'][0]['Metrics']
        assert (metrics['Top 1 Accuracy'], metrics['Top 5 Accuracy']) == (top1, top5)
        assert 'not measured here' in m['Results Note']
        assert m['Metadata']['Input Size'] == 224 and m['Metadata']['Epochs'] == 200
        # ours has 1000 (5089) classes, TF 1001 (5090): one row of the linear layer less
        width = 512 if '190' in name else 256
        assert abs(m['Metadata']['Parameters'] + width + 1 - params_m * 1e6) < 0.05e6, name
        assert abs(m['Metadata']['FLOPs'] / 1e9 - gflops) < 0.11, name
        if 'Weights' in m:
            assert m['Weights'].startswith('https://storage.cloud.google.com/cloud-tpu-checkpoints/'
                                           'detection/classification/')
            # tensorflow/tpu's TF1 checkpoints: the legacy converter, with its TPU padding
            up = m['Upstream']
            assert up['Converter'] == 'tpu_legacy2mmdet' and up['Converter Note']
            assert up['Converter Args']['arch'] == name.split('-')[1].split('_')[0]
            assert up['Cfg Options'] == {'model.backbone.padding_mode': 'tf_tpu'}
            assert any('test_classifier_matches_tensorflow_tpu_code' in t
                       for t in up['Verified By'])


def test_parameters_and_flops_are_measured_on_our_models(models):
    from mmdet_spine.analysis import complexity as mc
    counted = {}
    for m in models.values():
        if m['Config'] not in counted:
            counted[m['Config']] = mc.count_parameters(
                mc.build_detector(osp.join(REPO, m['Config']), 'meta'))
        assert counted[m['Config']] == m['Metadata']['Parameters'], m['Name']
    m = models['spinenet-49_in1k']
    assert mc.count_flops(osp.join(REPO, m['Config']), 224) == m['Metadata']['FLOPs']


def render_readme_table(models) -> str:
    """The README's classification zoo table, one row per metafile model."""
    rows = ['| model | config | input | params | FLOPs | top-1 / top-5 (published) | '
            'recipe |', '|---|---|---|---|---|---|---|']
    for m in models.values():
        meta, metrics = m['Metadata'], m['Results'][0]['Metrics']
        recipe = ('ReLU, no stochastic depth, no label smoothing' if 'baseline' in m['Name']
                  else 'swish, stochastic depth 0.2, label smoothing 0.1')
        rows.append(f"| `{m['Name']}` | [{osp.basename(m['Config'])[:-3]}]({m['Config']}) | "
                    f"{meta['Input Size']} | {meta['Parameters'] / 1e6:.1f} M | "
                    f"{meta['FLOPs'] / 1e9:.1f} G | {metrics['Top 1 Accuracy']} / "
                    f"{metrics['Top 5 Accuracy']} | {recipe} |")
    return '\n'.join(rows)


def test_readme_table_is_the_metafile(models):
    with open(osp.join(REPO, 'README.md')) as f:
        text = f.read()
    begin, end = '<!-- BEGIN cls-zoo-table -->\n', '\n<!-- END cls-zoo-table -->'
    assert begin in text and end in text, 'README.md lacks the cls-zoo-table block'
    table = text.split(begin, 1)[1].split(end, 1)[0]
    assert table == render_readme_table(models), \
        'README classification table drifted from configs/spinenet_cls/metafile.yml'
