"""Fuzzed checkpoints: each one loads exactly the original tensors or is refused with one
CheckpointSafetyError line naming the file; never another exception, never other numbers.

torch does not check the CRC-32 of its zip records (a bit flip inside a tensor loads as other
weights: 175 of 200 random flips did, measured on torch 2.13), so ``safe_torch_load`` checks
them; the checkpoints mmdet-spine writes also carry a sha256 record, checked by the local
loader (the path ``--resume``, ``tools/test.py`` and ``load_from`` take).
"""
import io
import os
import random
import zipfile

import pytest
import torch

from mmdet_spine.engine.checkpoint_safety import load_local_checkpoint
from mmdet_spine.errors import CheckpointIntegrityError, CheckpointSafetyError
from mmdet_spine.fileio import safe_torch_load, write_checkpoint_bytes


def _original():
    g = torch.Generator().manual_seed(0)
    # ~100 KB: larger than the first ~67 KB where torch's reader raised OSError(22)
    state = {'backbone.conv.weight': torch.randn(64, 3, 7, 7, generator=g),
             'backbone.bn.running_mean': torch.randn(64, generator=g),
             'head.cls.weight': torch.randn(90, 64, 3, 3, generator=g),
             'head.cls.bias': torch.zeros(90), 'steps': torch.tensor(7)}
    buf = io.BytesIO()
    torch.save({'state_dict': state, 'meta': {'epoch': 3, 'iter': 12, 'name': 'fuzz'}}, buf)
    return state, buf.getvalue()


def _mutations(data: bytes, rng: random.Random):
    """(label, bytes): >= 300 damaged versions of ``data``."""
    n = len(data)
    out = []
    offsets = sorted({0, 1, 2, 3, 4, 22, 30, 64, 100, 512, 1000, 4096, 30000, 60000, 67000,
                      n // 2, n - 22, n - 1} | {rng.randrange(1, n) for _ in range(72)})
    out += [(f'truncated at {k}', data[:k]) for k in offsets if k < n]
    for i in range(130):  # single bit flips anywhere (most land in tensor data)
        b = bytearray(data)
        pos = rng.randrange(n)
        b[pos] ^= 1 << rng.randrange(8)
        out.append((f'bit flip at {pos}', bytes(b)))
    zip_info = zipfile.ZipFile(io.BytesIO(data)).infolist()
    for info in zip_info:  # a flip in every record, in its local header and in the directory
        for pos in (info.header_offset + 30 + len(info.filename) + 70, info.header_offset + 14,
                    info.header_offset + 28):
            if pos < n:
                b = bytearray(data)
                b[pos] ^= 0x10
                out.append((f'{info.filename}: flip at {pos}', bytes(b)))
    for i in range(25):  # overwritten runs of random bytes
        b = bytearray(data)
        pos, length = rng.randrange(n), rng.randrange(1, 64)
        b[pos:pos + length] = bytes(rng.randrange(256) for _ in range(length))
        out.append((f'random run at {pos}', bytes(b[:n])))
    for size in (0, 1, 7, 100, 4096, 70000):  # random bytes, with and without zip magic
        noise = bytes(rng.randrange(256) for _ in range(size))
        out += [(f'random {size} bytes', noise), (f'PK + random {size} bytes', b'PK\x03\x04' + noise)]
    out += [(f'text {t[:12]!r}', t) for t in (
        b'hello', b'hello\n', b'', b'{"state_dict": {}}', b'<!DOCTYPE html><html><body>Sign in'
        b'</body></html>', b'\x80\x02}q\x00.', b'\x80\x04\x95' + b'\x00' * 20, b'PK',
        b'PK\x05\x06' + b'\x00' * 18, 'v\u00e9rifi\u00e9'.encode(), b'#!/bin/sh\nrm -rf /\n')]
    out.append(('appended garbage', data + b'garbage'))
    out.append(('duplicated', data + data))
    return out


def _same(loaded, state) -> bool:
    sd = loaded.get('state_dict') if isinstance(loaded, dict) else None
    return (isinstance(sd, dict) and sd.keys() == state.keys()
            and all(torch.equal(sd[k], v) and sd[k].dtype == v.dtype for k, v in state.items())
            and loaded.get('meta') == {'epoch': 3, 'iter': 12, 'name': 'fuzz'})


def test_fuzzed_checkpoints_load_exactly_or_raise_one_line(tmp_path):
    state, data = _original()
    cases = _mutations(data, random.Random(2024))
    assert len(cases) >= 300
    path = str(tmp_path / 'fuzz.pth')
    outcome = {'same': 0, 'refused': 0}
    for label, content in cases:
        with open(path, 'wb') as f:
            f.write(content)
        try:
            loaded = safe_torch_load(path, map_location='cpu')
        except CheckpointSafetyError as e:
            msg = str(e)
            assert '\n' not in msg and path in msg, (label, msg)
            assert 'weights_only' not in msg, (label, msg)  # never torch's advice
            outcome['refused'] += 1
            continue
        except Exception as e:  # noqa: BLE001
            pytest.fail(f'{label}: {type(e).__name__}: {e}')
        assert _same(loaded, state), f'{label}: loaded different tensors'
        outcome['same'] += 1
    # the untouched parts of a zip (timestamps, padding, appended bytes) may load unchanged;
    # everything else is refused
    assert outcome['refused'] >= 250, outcome
    # and a stream is handled like a file
    with pytest.raises(CheckpointSafetyError, match='the checkpoint stream'):
        safe_torch_load(io.BytesIO(data[:5000]))
    assert _same(safe_torch_load(io.BytesIO(data)), state)


def test_our_checkpoints_refuse_every_changed_byte(tmp_path):
    """With a sha256 record, any change at all is a CheckpointIntegrityError (one line)."""
    state, data = _original()
    path = str(tmp_path / 'epoch_3.pth')
    rng = random.Random(7)
    for i in range(40):
        write_checkpoint_bytes(data, path)
        assert _same(load_local_checkpoint(path, map_location='cpu'), state)
        b = bytearray(data)
        pos = rng.randrange(len(b))
        b[pos] ^= 1 << rng.randrange(8)
        with open(path, 'r+b') as f:  # damage after saving: the record stays
            f.write(bytes(b))
        with pytest.raises(CheckpointIntegrityError) as e:
            load_local_checkpoint(path, map_location='cpu')
        assert '\n' not in str(e.value) and 'does not match the sha256 recorded' in str(e.value)
    os.remove(path + '.sha256')  # without a record: the CRC check still refuses the flip
    with pytest.raises(CheckpointSafetyError):
        load_local_checkpoint(path, map_location='cpu')


def test_legacy_format_refusal_names_the_global_without_torchs_advice(tmp_path):
    class RunsCode:
        def __reduce__(self):
            return (os.system, ('true',))

    for zip_format in (False, True):
        path = tmp_path / f'evil_{zip_format}.pth'
        torch.save({'w': torch.ones(1), 'x': RunsCode()}, path,
                   _use_new_zipfile_serialization=zip_format)
        with pytest.raises(CheckpointSafetyError) as e:
            safe_torch_load(str(path))
        msg = str(e.value)
        assert 'Refusing to load' in msg and 'system' in msg and str(path) in msg
        assert 'weights_only' not in msg and 're-run' not in msg.lower()
        assert '\n' not in msg
    # legacy files whose data is cut are refused too
    torch.save({'w': torch.randn(5000)}, tmp_path / 'legacy.pth',
               _use_new_zipfile_serialization=False)
    data = (tmp_path / 'legacy.pth').read_bytes()
    for k in (0, 10, 100, len(data) // 2, len(data) - 1):
        (tmp_path / 'cut.pth').write_bytes(data[:k])
        with pytest.raises(CheckpointSafetyError, match='cut.pth'):
            safe_torch_load(str(tmp_path / 'cut.pth'))
