"""Checkpoints load weights_only on torch >= 2.6, and nothing loaded can execute code."""
import functools
import http.server
import os
import os.path as osp
import threading

import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

import mmdet_spine  # noqa: F401  (registers the safe checkpoint schemes)
from mmdet_spine.engine import CheckpointSafetyError, safe_torch_load
from mmdet_spine.errors import ZooError


class _RunsCode:
    """Unpickling this runs ``os.system`` (what a malicious checkpoint would do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def _malicious(path, marker):
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': _RunsCode(marker)}, path)
    return path


def test_mmengine_checkpoint_contents_load_with_weights_only(tmp_path):
    import numpy as np
    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    buf.update(1.25)
    ckpt = {'state_dict': {'w': torch.ones(2)},
            'meta': {'epoch': 1, 'seed': np.int64(3), 'dtype': np.dtype('float32'),
                     'arr': np.arange(3, dtype=np.float32),
                     'message_hub': {'log_scalars': {'train/loss': buf}}}}
    torch.save(ckpt, tmp_path / 'ok.pth')
    loaded = _load_checkpoint(str(tmp_path / 'ok.pth'), map_location='cpu')
    assert loaded['meta']['message_hub']['log_scalars']['train/loss'].mean() == pytest.approx(0.875)
    assert loaded['meta']['seed'] == 3 and loaded['meta']['arr'].tolist() == [0, 1, 2]


def test_malicious_local_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / 'pwned'
    path = _malicious(str(tmp_path / 'evil.pth'), marker)
    with pytest.raises(CheckpointSafetyError) as err:
        _load_checkpoint(path, map_location='cpu')
    msg = str(err.value)
    assert 'system' in msg and 'Refusing' in msg and '\n' not in msg
    assert not marker.exists()


@pytest.mark.parametrize('content', [b'not a checkpoint at all', b'PK\x03\x04truncated'])
def test_garbage_checkpoint_gives_clear_error(tmp_path, content):
    path = tmp_path / 'bad.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointSafetyError, match='not a readable PyTorch checkpoint'):
        safe_torch_load(str(path))


def test_truncated_checkpoint_gives_clear_error(tmp_path):
    torch.save({'state_dict': {'w': torch.randn(1000)}}, tmp_path / 'full.pth')
    data = (tmp_path / 'full.pth').read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointSafetyError, match='not a readable PyTorch checkpoint'):
        _load_checkpoint(str(tmp_path / 'cut.pth'))


@pytest.fixture
def loopback_server(tmp_path):
    root = tmp_path / 'www'
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


def test_malicious_http_checkpoint_is_refused(tmp_path, loopback_server, monkeypatch):
    root, url = loopback_server
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    marker = tmp_path / 'pwned_http'
    _malicious(str(root / 'evil.pth'), marker)
    torch.save({'state_dict': {'w': torch.ones(3)}}, root / 'good.pth')
    with pytest.raises(CheckpointSafetyError, match='Refusing'):
        _load_checkpoint(f'{url}/evil.pth', map_location='cpu')
    assert not marker.exists()
    good = _load_checkpoint(f'{url}/good.pth', map_location='cpu')
    assert good['state_dict']['w'].tolist() == [1, 1, 1]
    assert osp.isfile(tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'good.pth')


def test_http_hash_suffix_is_verified(tmp_path, loopback_server, monkeypatch):
    root, url = loopback_server
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    torch.save({'state_dict': {'w': torch.ones(3)}}, root / 'model-deadbeef.pth')
    with pytest.raises(ZooError, match='checksum mismatch.*expected sha256 deadbeef.*removed'):
        _load_checkpoint(f'{url}/model-deadbeef.pth', map_location='cpu')
    cache = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    assert not any(p.name.startswith('model') for p in cache.iterdir())


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    """mmengine's pickles name builtins.getattr; only HistoryBuffer's methods are handed out."""
    import pickle

    import numpy as np

    class GetToFile:
        def __reduce__(self):
            return (getattr, (np.ndarray, 'tofile'))

    torch.save({'x': GetToFile()}, tmp_path / 'getattr.pth')
    with pytest.raises(pickle.UnpicklingError, match='not part of an mmengine checkpoint'):
        safe_torch_load(str(tmp_path / 'getattr.pth'))

    class GetFromBuffer:
        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    torch.save({'x': GetFromBuffer()}, tmp_path / 'getattr2.pth')
    with pytest.raises(pickle.UnpicklingError):
        safe_torch_load(str(tmp_path / 'getattr2.pth'))


@pytest.mark.parametrize('content,what', [
    (None, 'cut'), (b'<!DOCTYPE html><html><body>Sign in</body></html>', 'html'),
    ('evil', 'refused')])
def test_http_file_that_fails_to_load_is_not_kept_in_the_cache(tmp_path, loopback_server,
                                                               monkeypatch, content, what):
    """A download cut off without Content-Length, an HTML page or a refused pickle is
    deleted from the hub cache, so the next try downloads again instead of reusing it."""
    root, url = loopback_server
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    torch.save({'state_dict': {'w': torch.ones(3)}}, root / 'full.pth')
    if content is None:  # what a server that sends no Content-Length leaves when it drops
        content = (root / 'full.pth').read_bytes()[:600]
    elif content == 'evil':
        _malicious(str(root / 'm.pth'), tmp_path / 'pwned')
        content = (root / 'm.pth').read_bytes()
    (root / 'model.pth').write_bytes(content)
    with pytest.raises(CheckpointSafetyError, match='cached download was deleted') as err:
        _load_checkpoint(f'{url}/model.pth', map_location='cpu')
    assert '\n' not in str(err.value)
    cache = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    assert list(cache.iterdir()) == []
    # fixed upstream: the next load downloads the good file
    (root / 'model.pth').write_bytes((root / 'full.pth').read_bytes())
    assert _load_checkpoint(f'{url}/model.pth')['state_dict']['w'].tolist() == [1, 1, 1]
    assert not (tmp_path / 'pwned').exists()


def test_text_and_short_files_are_one_clear_error(tmp_path):
    """Seen as `KeyError: 101` and `OSError: [Errno 22]` before."""
    (tmp_path / 'hello.pth').write_text('hello')
    torch.save({'w': torch.randn(30000)}, tmp_path / 'full.pth')
    (tmp_path / 'cut.pth').write_bytes((tmp_path / 'full.pth').read_bytes()[:40000])
    for name in ('hello.pth', 'cut.pth'):
        with pytest.raises(CheckpointSafetyError, match=f"'{tmp_path / name}' is not a "
                                                        'readable PyTorch checkpoint'):
            _load_checkpoint(str(tmp_path / name))
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):  # as mmengine's
        _load_checkpoint(str(tmp_path / 'nope.pth'))
