"""``zoo://`` through the tools a user runs: tools/zoo.py, tools/train.py and tools/test.py."""
import io
import os.path as osp
import pickle
import re

import pytest
import torch

from helpers import REPO, TINY_CONFIG, load_tool, run_tool
from mmdet_spine.engine import safe_torch_load
from mmdet_spine.zoo import ZooError
from zoo_server import LoopbackServer, sha256_bytes, write_index

CLS_BIAS = -20.0  # the served weights' classification bias: scores ~2e-9 prove they loaded


def _tiny_checkpoint() -> bytes:
    import mmdet_spine  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    model = MODELS.build(Config.fromfile(TINY_CONFIG).model)
    with torch.no_grad():
        model.bbox_head.retina_cls.bias.fill_(CLS_BIAS)
    buf = io.BytesIO()
    torch.save({'state_dict': model.state_dict(), 'meta': {'note': 'zoo test'}}, buf)
    return buf.getvalue()


@pytest.fixture
def zoo_server(tmp_path):
    server = LoopbackServer()
    data = _tiny_checkpoint()
    server.files['/tiny_retinanet.pth'] = data
    index = write_index(tmp_path / 'model-index.yml', [{
        'Name': 'tiny-retinanet_shapes', 'Config': osp.relpath(TINY_CONFIG, REPO),
        'Weights': f'{server.url}/tiny_retinanet.pth',
        'Upstream': {'Source': 'test', 'Format': 'mmdet', 'SHA256': sha256_bytes(data),
                     'Cfg Options': {'model.test_cfg.max_per_img': 50}}}], REPO)
    env = {'TORCH_HOME': str(tmp_path / 'torch_home'), 'MMDET_SPINE_ZOO_INDEX': index}
    yield server, env, data
    server.close()


def _zoo_cli():
    return load_tool(osp.join(REPO, 'tools', 'zoo.py'), 'zoo_cli')


def test_zoo_cli_fetch_path_info(zoo_server, monkeypatch, capsys):
    server, env, data = zoo_server
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cli = _zoo_cli()
    with pytest.raises(SystemExit) as exit_:
        cli.main(['path', 'tiny-retinanet_shapes'])
    assert exit_.value.code == 1 and 'not fetched yet' in capsys.readouterr().err

    proc = run_tool(['tools/zoo.py', 'fetch', 'tiny-retinanet_shapes', '--quiet'], env=env)
    cached = osp.join(env['TORCH_HOME'], 'hub', 'checkpoints', 'mmdet_spine',
                      f'tiny-retinanet_shapes-{sha256_bytes(data)[:8]}.pth')
    assert f'checkpoint: {cached}' in proc.stdout
    assert ('evaluate:   python tools/test.py tests/data/configs/tiny_retinanet_shapes.py '
            'zoo://tiny-retinanet_shapes --cfg-options model.test_cfg.max_per_img=50') \
        in proc.stdout

    cli.main(['path', 'tiny-retinanet_shapes'])
    assert capsys.readouterr().out.strip() == cached
    cli.main(['info', 'tiny-retinanet_shapes'])
    info = capsys.readouterr().out
    assert re.search(rf'^sha256 +{sha256_bytes(data)}$', info, re.M)
    assert re.search(rf'^cached +{re.escape(cached)}$', info, re.M)
    cli.main(['list', 'effdet'])
    listing = capsys.readouterr().out
    assert re.search(r'^efficientdet-d0_effdet +34\.3 +effdet2mmdet$', listing, re.M)
    from mmdet_spine.zoo import load_model_index
    effdet_rows = [n for n in load_model_index() if 'effdet' in n]
    assert len(effdet_rows) == 21  # D0-D7x, Lite0-4 + Lite3x, D0-D5 AdvProp
    assert f'{len(effdet_rows)} models' in listing
    assert server.requests == ['/tiny_retinanet.pth']
    with pytest.raises(ZooError, match='did you mean: tiny-retinanet_shapes'):
        cli.main(['fetch', 'tiny-retinanet'])


@pytest.mark.slow
def test_load_from_zoo_through_train_and_test(zoo_server, tiny_shapes, tmp_path):
    server, env, _ = zoo_server
    wd = str(tmp_path / 'work')
    proc = run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', wd, '--cfg-options',
                     'load_from=zoo://tiny-retinanet_shapes', 'train_cfg.max_epochs=1'],
                    shapes_root=tiny_shapes, env=env)
    log = proc.stdout + proc.stderr
    assert 'Load checkpoint from zoo://tiny-retinanet_shapes' in log
    assert server.requests == ['/tiny_retinanet.pth']
    trained = safe_torch_load(osp.join(wd, 'epoch_1.pth'), map_location='cpu')
    # two SGD steps move the loaded bias a little, never back to the prior init (-4.6)
    assert trained['state_dict']['bbox_head.retina_cls.bias'].max() < CLS_BIAS + 2

    out = str(tmp_path / 'preds.pkl')
    server.close()  # the cache alone must serve tools/test.py
    proc = run_tool(['tools/test.py', TINY_CONFIG, 'zoo://tiny-retinanet_shapes',
                     '--work-dir', wd, '--out', out], shapes_root=tiny_shapes, env=env)
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr
    with open(out, 'rb') as f:
        preds = pickle.load(f)  # written by this test's own run
    scores = torch.cat([torch.as_tensor(p['pred_instances']['scores']) for p in preds])
    assert len(preds) == 8 and scores.numel() > 0
    assert float(scores.max()) < 1e-6  # sigmoid(-20): the zoo weights were used
