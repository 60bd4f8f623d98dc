"""Zoo downloads against a real HTTP server on 127.0.0.1: verified, cached, never partial."""
import io
import os
import os.path as osp
import tarfile

import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint

import mmdet_spine  # noqa: F401  (registers zoo://)
from helpers import REPO, free_port
from mmdet_spine.zoo import ZooError, cache_dir, fetch, find_cached, get_model
from mmdet_spine.zoo.cache import downloads_dir
from mmdet_spine.zoo.fetch import resolve_tf_python, safe_extract
from mmdet_spine.zoo.model_index import ENV_INDEX
from zoo_server import LoopbackServer, sha256_bytes, write_index

CONFIG = 'tests/data/configs/tiny_retinanet_shapes.py'


def _checkpoint_bytes(value=1.5) -> bytes:
    buf = io.BytesIO()
    torch.save({'state_dict': {'w': torch.full((3,), value)}, 'meta': {'epoch': 1}}, buf)
    return buf.getvalue()


@pytest.fixture
def server():
    s = LoopbackServer()
    yield s
    s.close()


@pytest.fixture
def zoo_env(tmp_path, monkeypatch):
    """TORCH_HOME in tmp; returns ``add(models)`` that installs a test-only index."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))

    def add(models):
        path = write_index(tmp_path / 'model-index.yml', models, REPO)
        monkeypatch.setenv(ENV_INDEX, path)
        return path
    return add


def _entry(name, url, sha256=None, fmt='mmdet'):
    return {'Name': name, 'Config': CONFIG, 'Weights': url,
            'Upstream': {'Source': 'test', 'Format': fmt, 'SHA256': sha256}}


def _cache_files():
    found = []
    for root, _, files in os.walk(cache_dir()):
        found += [osp.join(root, f) for f in files]
    return found


def test_first_fetch_downloads_and_verifies_second_is_a_cache_hit(server, zoo_env):
    data = _checkpoint_bytes()
    server.files['/tiny.pth'] = data
    zoo_env([_entry('tiny', f'{server.url}/tiny.pth', sha256_bytes(data))])
    path = fetch('tiny', progress=False)
    assert server.requests == ['/tiny.pth']
    assert osp.basename(path) == f'tiny-{sha256_bytes(data)[:8]}.pth'
    assert _cache_files() == [path]  # the upstream copy is not kept
    assert fetch('tiny') == path
    ckpt = _load_checkpoint('zoo://tiny', map_location='cpu')
    assert ckpt['state_dict']['w'].tolist() == [1.5, 1.5, 1.5]
    assert server.requests == ['/tiny.pth']  # no second request


def test_cached_checkpoint_loads_offline(server, zoo_env):
    data = _checkpoint_bytes(2.0)
    server.files['/tiny.pth'] = data
    zoo_env([_entry('tiny', f'{server.url}/tiny.pth')])
    fetch('tiny', progress=False)
    server.close()
    ckpt = _load_checkpoint('zoo://tiny', map_location='cpu')
    assert ckpt['state_dict']['w'].tolist() == [2.0, 2.0, 2.0]
    assert len(server.requests) == 1


def test_tampered_download_is_rejected_and_removed(server, zoo_env):
    good = _checkpoint_bytes()
    server.files['/tiny.pth'] = good[:-1] + bytes([good[-1] ^ 1])
    zoo_env([_entry('tiny', f'{server.url}/tiny.pth', sha256_bytes(good))])
    with pytest.raises(ZooError) as err:
        fetch('tiny', progress=False)
    msg = str(err.value)
    assert f'expected sha256 {sha256_bytes(good)}' in msg
    assert f'got {sha256_bytes(server.files["/tiny.pth"])}' in msg and 'removed' in msg
    assert _cache_files() == []


def test_tampered_cache_entry_is_rejected_and_removed(server, zoo_env):
    server.files['/tiny.pth'] = _checkpoint_bytes()
    zoo_env([_entry('tiny', f'{server.url}/tiny.pth')])
    path = fetch('tiny', progress=False)
    with open(path, 'r+b') as f:
        f.seek(100)
        f.write(b'\x00\x01')
    with pytest.raises(ZooError, match='checksum mismatch.*removed'):
        _load_checkpoint('zoo://tiny')
    assert not osp.exists(path)


def test_dropped_connection_leaves_no_cache_entry(server, zoo_env):
    server.files['/tiny.pth'] = _checkpoint_bytes()
    server.truncate.add('/tiny.pth')
    zoo_env([_entry('tiny', f'{server.url}/tiny.pth')])  # no published hash: length must catch it
    with pytest.raises(ZooError, match='connection closed after'):
        fetch('tiny', progress=False)
    assert _cache_files() == []
    assert find_cached('tiny') is None


def test_unreachable_url_names_url_and_where_to_put_the_file(zoo_env):
    url = f'http://127.0.0.1:{free_port()}/official-12345678.pth'
    zoo_env([_entry('tiny', url)])
    with pytest.raises(ZooError) as err:
        _load_checkpoint('zoo://tiny')
    msg = str(err.value)
    assert '\n' not in msg and f'could not download {url}' in msg
    assert osp.join(downloads_dir(), 'official-12345678.pth') in msg
    # placing the file there by hand makes it work without the network
    os.makedirs(downloads_dir(), exist_ok=True)
    with open(osp.join(downloads_dir(), 'official-12345678.pth'), 'wb') as f:
        f.write(_checkpoint_bytes(3.0))
    assert _load_checkpoint('zoo://tiny')['state_dict']['w'].tolist() == [3.0] * 3


def test_malicious_download_is_refused_and_not_cached(server, zoo_env, tmp_path):
    marker = tmp_path / 'pwned'

    class Evil:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))
    buf = io.BytesIO()
    torch.save({'state_dict': {}, 'x': Evil()}, buf)
    server.files['/evil.pth'] = buf.getvalue()
    zoo_env([_entry('evil', f'{server.url}/evil.pth')])
    with pytest.raises(Exception, match='Refusing'):
        fetch('evil', progress=False)
    assert not marker.exists() and find_cached('evil') is None
    assert _cache_files() == []


def test_unknown_name_lists_close_names(zoo_env):
    with pytest.raises(ZooError) as err:
        get_model('efficientdet-d0_efdet')
    assert 'did you mean: efficientdet-d0_effdet' in str(err.value)


def test_model_without_converter_says_so(zoo_env):
    # every published row of ours converts (google/automl's are aliases of the effdet rows);
    # a user's index may still list weights nothing converts
    zoo_env([_entry('automl-d0-test', 'https://storage.googleapis.com/x/efficientdet-d0.tar.gz',
                    fmt='automl-tf')])
    with pytest.raises(ZooError, match='no converter for automl-tf weights yet.*'
                       r'https://storage\.googleapis\.com/.*efficientdet-d0\.tar\.gz'):
        fetch('automl-d0-test')
    assert _cache_files() == []


def test_tf_python_is_required_for_tf_checkpoints(monkeypatch, tmp_path):
    monkeypatch.setenv('MMDET_SPINE_TF_PYTHON', str(tmp_path / 'nope' / 'python'))
    with pytest.raises(ZooError, match=r'\$MMDET_SPINE_TF_PYTHON=.*nope/python: no such'):
        resolve_tf_python()
    assert resolve_tf_python(__file__) == __file__


def _tar_with(tmp_path, add):
    path = tmp_path / 'ckpt.tar.gz'
    with tarfile.open(path, 'w:gz') as tar:
        add(tar)
    return str(path)


def _add_bytes(tar, name, data=b'x', type_=tarfile.REGTYPE, linkname=''):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = type_, len(data) if type_ == tarfile.REGTYPE else 0, \
        linkname
    tar.addfile(info, io.BytesIO(data) if type_ == tarfile.REGTYPE else None)


def test_safe_extract_refuses_links_and_escapes(tmp_path):
    ok = _tar_with(tmp_path, lambda t: _add_bytes(t, 'ckpt/ckpt-1.index', b'idx'))
    safe_extract(ok, str(tmp_path / 'ok'))
    assert (tmp_path / 'ok' / 'ckpt' / 'ckpt-1.index').read_bytes() == b'idx'
    link = _tar_with(tmp_path, lambda t: _add_bytes(t, 'ckpt/evil', type_=tarfile.SYMTYPE,
                                                    linkname='/etc/passwd'))
    with pytest.raises(ZooError, match="refusing to extract 'ckpt/evil'"):
        safe_extract(link, str(tmp_path / 'link'))
    escape = _tar_with(tmp_path, lambda t: _add_bytes(t, '../escaped.txt'))
    with pytest.raises(ZooError, match='refusing to extract'):
        safe_extract(escape, str(tmp_path / 'esc'))
    assert not (tmp_path / 'escaped.txt').exists()


def test_plain_url_dropped_mid_file_is_not_cached(server, zoo_env):
    """``https://`` checkpoints (not only zoo://) use the length-checked downloader."""
    server.files['/plain.pth'] = _checkpoint_bytes()
    server.truncate.add('/plain.pth')
    with pytest.raises(ZooError, match='connection closed after') as err:
        _load_checkpoint(f'{server.url}/plain.pth')
    hub = osp.join(torch.hub.get_dir(), 'checkpoints')
    assert f'place it at {osp.join(hub, "plain.pth")}' in str(err.value)
    assert os.listdir(hub) == []


def test_pretrained_init_cfg_accepts_a_zoo_name(server, zoo_env):
    from mmengine.model import BaseModule

    class Tiny(BaseModule):
        def __init__(self, init_cfg):
            super().__init__(init_cfg)
            self.w = torch.nn.Parameter(torch.zeros(3))

    server.files['/tiny.pth'] = _checkpoint_bytes(4.0)
    zoo_env([_entry('tiny', f'{server.url}/tiny.pth')])
    model = Tiny(init_cfg=dict(type='Pretrained', checkpoint='zoo://tiny'))
    model.init_weights()
    assert model.w.tolist() == [4.0, 4.0, 4.0]


@pytest.mark.parametrize('raw,shown', [
    ('0000000000000000000000000000000000000000000000000000000000000000', '0'),  # int 0
    ('01234567', '342391'),  # YAML 1.1 octal
    ('12345678', '12345678'),  # a decimal number
    ("'not-hex!'", "'not-hex!'"), ("''", "''"), ('yes', 'True')])
def test_index_refuses_a_sha256_that_is_not_a_hex_string(monkeypatch, tmp_path, raw, shown):
    """Unquoted, YAML reads 000...0 as the integer 0 (taken as "no published hash" before)."""
    path = tmp_path / 'model-index.yml'
    path.write_text(f'Models:\n- Name: tiny\n  Config: {REPO}/{CONFIG}\n'
                    f'  Weights: http://127.0.0.1:1/tiny.pth\n'
                    f'  Upstream:\n    Format: mmdet\n    SHA256: {raw}\n')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setenv(ENV_INDEX, str(path))
    with pytest.raises(ZooError) as err:
        get_model('tiny')
    msg = str(err.value)
    assert f'model tiny: Upstream.SHA256={shown} is not a sha256' in msg and '\n' not in msg
    assert 'quote' in msg
