"""The TF Model Garden path: a ``tar.gz`` of a TF2 SpineNet checkpoint (written by the TF
reference export with random weights, served on 127.0.0.1) is downloaded, extracted safely,
read by TensorFlow in ``.venv-tf`` through ``spinenet_tf2mmdet`` and cached as our backbone."""
import json
import os
import os.path as osp
import subprocess
import tarfile

import pytest
import torch

import mmdet_spine  # noqa: F401
from helpers import REPO, TF_PYTHON, load_tool
from mmdet_spine.engine import safe_torch_load
from mmdet_spine.zoo import fetch
from mmdet_spine.zoo.model_index import ENV_INDEX
from zoo_server import LoopbackServer, sha256_bytes, write_index


@pytest.mark.slow
def test_tf_model_garden_tarball_is_fetched_and_converted(tmp_path, monkeypatch):
    assert osp.isfile(TF_PYTHON), f'{TF_PYTHON} missing: `make setup-test` creates .venv-tf'
    case = dict(arch='49S', size=128, seed=0, out=str(tmp_path / 'ref.npz'),
                ckpt_out=str(tmp_path / 'export' / 'ckpt-1'))
    (tmp_path / 'cases.json').write_text(json.dumps([case]))
    proc = subprocess.run([TF_PYTHON, 'tests/reference/tf_spinenet_export.py', '--cases',
                           str(tmp_path / 'cases.json')], cwd=REPO, capture_output=True,
                          text=True, timeout=900,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-4000:]
    archive = tmp_path / 'spinenet-49s-test.tar.gz'
    with tarfile.open(archive, 'w:gz') as tar:
        tar.add(tmp_path / 'export', arcname='spinenet-49s')
    data = archive.read_bytes()

    server = LoopbackServer()
    server.files['/spinenet-49s-test.tar.gz'] = data
    try:
        monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
        monkeypatch.setenv('MMDET_SPINE_TF_PYTHON', TF_PYTHON)
        monkeypatch.setenv(ENV_INDEX, write_index(tmp_path / 'model-index.yml', [{
            'Name': 'spinenet-49s-test', 'Config':
                'configs/spinenet/retinanet_spinenet-49s_32xb8-lsj-500e_coco-640.py',
            'Weights': f'{server.url}/spinenet-49s-test.tar.gz',
            'Upstream': {'Source': 'test', 'Format': 'tf-model-garden',
                         'SHA256': sha256_bytes(data), 'Converter': 'spinenet_tf2mmdet',
                         'Converter Args': {'arch': '49S', 'prefix': 'backbone.'}}}], REPO))
        path = fetch('spinenet-49s-test', progress=False)
    finally:
        server.close()
    ckpt = safe_torch_load(path)
    assert ckpt['meta']['zoo_name'] == 'spinenet-49s-test'
    state = ckpt['state_dict']
    conv = _converter()
    arrays, _ = conv.load_npz(case['out'])
    expected = conv.convert_arrays(arrays, '49S')
    assert sorted(state) == sorted('backbone.' + k for k in expected)
    for key, value in expected.items():
        assert torch.equal(state['backbone.' + key], value), key
    assert not os.listdir(osp.join(tmp_path, 'torch_home', 'hub', 'checkpoints', 'mmdet_spine',
                                   'downloads'))


def _converter():
    from mmdet_spine.converters import tf_model_garden
    return tf_model_garden
