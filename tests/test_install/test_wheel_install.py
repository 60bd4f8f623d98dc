"""The package is the product: a wheel installed into a fresh venv works outside the checkout.

The wheel is built from a copy of the working tree (``pip wheel``; the checkout's own
``mmdet_spine/.mim`` links are never touched), installed with its dependencies into a new venv
(torch and mmcv from the wheels pip already has: seconds, not a second mmcv build), and every
command below runs in that venv from a temporary directory outside the repository, with no
``PYTHONPATH``:

- ``import mmdet_spine`` resolves to the venv's site-packages;
- ``mim search mmdet_spine`` (openmim) lists the zoo from the installed ``.mim/``;
- a zoo fetch + load of an effdet-format file served on 127.0.0.1;
- a zoo fetch of a TF Model Garden RetinaNet tarball served on 127.0.0.1, written the way the
  Model Garden trainer writes it (``tf.train.Checkpoint(global_step, model, optimizer,
  backbone, head)`` saved by a ``CheckpointManager``), converted by the installed converter with
  the TensorFlow interpreter given by ``$MMDET_SPINE_TF_PYTHON``;
- ``mim train mmdet_spine`` on a user config that inherits the installed demo config (by its
  path under ``site-packages/mmdet_spine/.mim/configs``; mmengine's ``pkg::`` base syntax only
  knows OpenMMLab's own packages), then the installed ``tools/test.py`` on its checkpoint.
"""
import io
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap

import pytest
import torch

from helpers import REPO, TF_PYTHON, TINY_SPEC
from test_zoo.zoo_server import LoopbackServer, sha256_bytes

CONSTRAINTS = osp.join(REPO, 'requirements', 'constraints.txt')
pytestmark = pytest.mark.slow


def _run(cmd, timeout=900, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if proc.returncode != 0:
        raise AssertionError(f'{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-5000:]}')
    return proc


def _copy_tree(dst):
    """The working tree's tracked and untracked-but-not-ignored files (what a user's sdist of
    this commit would hold, plus local changes)."""
    files = _run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=REPO).stdout
    for rel in filter(None, files.split('\0')):
        src = osp.join(REPO, rel)
        if not osp.isfile(src) or rel.startswith('mmdet_spine/.mim'):
            continue
        os.makedirs(osp.dirname(osp.join(dst, rel)), exist_ok=True)
        shutil.copy2(src, osp.join(dst, rel))


@pytest.fixture(scope='module')
def venv(tmp_path_factory):
    """A fresh venv with the wheel and its dependencies; returns (python, bin dir, outside)."""
    root = tmp_path_factory.mktemp('wheel')
    src, dist, env_dir = root / 'src', root / 'dist', root / 'venv'
    _copy_tree(str(src))
    _run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation',
          '-w', str(dist), str(src)])
    wheels = [f for f in os.listdir(dist) if f.endswith('.whl')]
    assert len(wheels) == 1, wheels
    _run([sys.executable, '-m', 'venv', str(env_dir)])
    py = str(env_dir / 'bin' / 'python')
    pip = [py, '-m', 'pip', 'install', '-q', '-c', CONSTRAINTS]
    _run(pip + ['setuptools==80.9.0', 'wheel', 'torch==2.13.0', 'numpy'])
    # mmcv 2.1.0 has no wheel for torch 2.13: pip's wheel cache holds the one built for .venv
    _run(pip + ['--no-build-isolation', 'mmcv==2.1.0'], env=dict(os.environ, MMCV_WITH_OPS='1'))
    _run(pip + [str(dist / wheels[0]), 'openmim'])
    outside = root / 'user'
    outside.mkdir()
    return py, str(env_dir / 'bin'), str(outside)


def _env(bin_dir, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    env.update(PATH=bin_dir + os.pathsep + env.get('PATH', ''), OMP_NUM_THREADS='1',
               PYTHONUNBUFFERED='1', **extra)
    return env


def _py(venv, code, **env):
    py, bin_dir, outside = venv
    return _run([py, '-c', textwrap.dedent(code)], cwd=outside, env=_env(bin_dir, **env))


def _installed(venv):
    """``site-packages/mmdet_spine`` of the venv."""
    out = _py(venv, 'import mmdet_spine, os; print(os.path.dirname(mmdet_spine.__file__))')
    return out.stdout.strip().splitlines()[-1]


def test_import_comes_from_site_packages(venv):
    pkg = _installed(venv)
    assert 'site-packages' in pkg and not pkg.startswith(REPO)
    for rel in ('.mim/model-index.yml', '.mim/configs/efficientdet/metafile.yml',
                '.mim/tools/train.py', '.mim/requirements/tf_reference.txt',
                'converters/tf_model_garden_reader.py'):
        assert osp.isfile(osp.join(pkg, rel)), rel


def test_mim_search_lists_the_zoo(venv):
    py, bin_dir, outside = venv
    proc = _run([osp.join(bin_dir, 'mim'), 'search', 'mmdet_spine'], cwd=outside,
                env=_env(bin_dir))
    for name in ('efficientdet-d0_effdet', 'retinanet_spinenet-49_coco'):
        assert name in proc.stdout, proc.stdout[-2000:]


def _index(path, name, url, sha, fmt, converter, args, config):
    import yaml
    with open(path, 'w') as f:
        yaml.safe_dump({'Models': [{
            'Name': name, 'Config': config, 'Weights': url,
            'Upstream': {'Source': 'test', 'Format': fmt, 'SHA256': sha, 'Converter': converter,
                         'Converter Args': args}}]}, f, sort_keys=False)
    return str(path)


def test_zoo_fetches_and_loads_an_effdet_file(venv, tmp_path):
    from effdet_reference import randomized_reference
    from mmdet_spine.converters.effdet import convert
    reference = randomized_reference('tf_efficientdet_d0', 256)
    buf = io.BytesIO()
    torch.save(reference.state_dict(), buf)
    data = buf.getvalue()
    name = f'tf_efficientdet_d0_34-{sha256_bytes(data)[:8]}.pth'
    expected = convert(reference.state_dict(), num_classes=80)
    pkg = _installed(venv)
    config = osp.join(pkg, '.mim', 'configs', 'efficientdet',
                      'efficientdet_d0_bifpn_8xb16-300e_coco.py')
    server = LoopbackServer()
    server.files['/' + name] = data
    try:
        index = _index(tmp_path / 'index.yml', 'd0-wheel_effdet', f'{server.url}/{name}',
                       sha256_bytes(data)[:8], 'effdet-pytorch', 'effdet2mmdet',
                       {'num_classes': 80}, config)
        out = _py(venv, f'''
            import torch
            from mmdet.registry import MODELS
            from mmengine.config import Config
            from mmengine.registry import init_default_scope
            from mmengine.runner import load_checkpoint
            import mmdet_spine  # noqa: F401
            init_default_scope('mmdet')
            model = MODELS.build(Config.fromfile({config!r}).model)
            load_checkpoint(model, 'zoo://d0-wheel_effdet', map_location='cpu', strict=True)
            w = model.bbox_head.cls_pred.pointwise_conv.conv.bias
            print('RESULT', float(w.double().sum()), tuple(w.shape))
        ''', TORCH_HOME=str(tmp_path / 'torch_home'), MMDET_SPINE_ZOO_INDEX=index)
    finally:
        server.close()
    total, shape = re.search(r'RESULT (\S+) \((\d+),\)', out.stdout).groups()
    ref = expected['bbox_head.cls_pred.pointwise_conv.conv.bias']
    assert int(shape) == ref.numel() == 9 * 80
    assert abs(float(total) - float(ref.double().sum())) < 1e-6


def test_zoo_fetches_a_model_garden_trainer_tarball(venv, tmp_path):
    assert osp.isfile(TF_PYTHON), f'{TF_PYTHON} missing: `make setup-test` creates .venv-tf'
    npz, ckpt_dir = str(tmp_path / 'ref.npz'), tmp_path / 'export' / 'retinanet'
    _run([TF_PYTHON, 'tests/reference/tf_retinanet_export.py', '--arch', '49S', '--size', '128',
          '--num-filters', '128', '--out', npz, '--trainer-ckpt', str(ckpt_dir)], cwd=REPO,
         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', OMP_NUM_THREADS='1'))
    assert any(f.endswith('.index') for f in os.listdir(ckpt_dir))
    archive = tmp_path / 'spinenet-49s-trainer.tar.gz'
    with tarfile.open(archive, 'w:gz') as tar:
        tar.add(ckpt_dir, arcname='retinanet')
    data = archive.read_bytes()
    from mmdet_spine.converters import tf_model_garden
    arrays, meta = tf_model_garden.load_npz(npz)
    expected = tf_model_garden.convert_npz_arrays(arrays, {}, '49S')
    pkg = _installed(venv)
    config = osp.join(pkg, '.mim', 'configs', 'spinenet',
                      'retinanet_spinenet-49s_32xb8-lsj-500e_coco-640.py')
    server = LoopbackServer()
    server.files['/spinenet-49s-trainer.tar.gz'] = data
    out_file = tmp_path / 'state.json'
    try:
        index = _index(tmp_path / 'index.yml', 'retinanet-49s-wheel', f'{server.url}/'
                       'spinenet-49s-trainer.tar.gz', sha256_bytes(data), 'tf-model-garden',
                       'spinenet_tf2mmdet', {'arch': '49S'}, config)
        _py(venv, f'''
            import json
            from mmdet_spine.fileio import safe_torch_load
            from mmdet_spine.zoo import fetch
            state = safe_torch_load(fetch('retinanet-49s-wheel', progress=False))['state_dict']
            json.dump({{k: float(v.double().sum()) for k, v in state.items()}},
                      open({str(out_file)!r}, 'w'))
        ''', TORCH_HOME=str(tmp_path / 'torch_home'), MMDET_SPINE_ZOO_INDEX=index,
            MMDET_SPINE_TF_PYTHON=TF_PYTHON, TF_CPP_MIN_LOG_LEVEL='3')
    finally:
        server.close()
    sums = json.loads(out_file.read_text())
    assert sorted(sums) == sorted(expected)
    assert any(k.startswith('bbox_head.retina_cls') for k in sums)
    for key, value in expected.items():
        assert abs(sums[key] - float(value.double().sum())) <= 1e-6 * max(
            1.0, float(value.double().abs().sum())), key


def test_mim_train_then_installed_test_tool(venv, tmp_path):
    py, bin_dir, outside = venv
    data_root = str(tmp_path / 'shapes') + '/'
    base = osp.join(_installed(venv), '.mim', 'configs', 'demo',
                    'retinanet_r18-half_fpn_6e_shapes.py')
    cfg = osp.join(outside, 'tiny_user_config.py')
    with open(cfg, 'w') as f:
        f.write(textwrap.dedent(f'''
            # A user's config outside any checkout, inheriting the installed demo config.
            _base_ = {base!r}
            data_root = {data_root!r}
            generate_cfg = {dict(TINY_SPEC)!r}
            train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                                    dataset=dict(data_root=data_root, generate_cfg=generate_cfg))
            val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                                  dataset=dict(data_root=data_root, generate_cfg=generate_cfg))
            test_dataloader = val_dataloader
            val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
            test_evaluator = val_evaluator
            model = dict(backbone=dict(base_channels=8),
                         neck=dict(in_channels=[16, 32, 64], out_channels=16),
                         bbox_head=dict(in_channels=16, feat_channels=16, stacked_convs=1),
                         test_cfg=dict(score_thr=0.0))
            train_cfg = dict(max_epochs=1, val_interval=1)
            param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0,
                                    end=10)]
            default_hooks = dict(logger=dict(interval=1))
        '''))
    work = str(tmp_path / 'work')
    env = _env(bin_dir)
    _run([osp.join(bin_dir, 'mim'), 'train', 'mmdet_spine', cfg, '--work-dir', work],
         cwd=outside, env=env)
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt), os.listdir(work)
    test_tool = osp.join(_installed(venv), '.mim', 'tools', 'test.py')
    proc = _run([py, test_tool, cfg, ckpt, '--work-dir', str(tmp_path / 'test')], cwd=outside,
                env=env)
    m = re.search(r'coco/bbox_mAP: (-?[\d.]+)', proc.stdout + proc.stderr)
    assert m, (proc.stdout + proc.stderr)[-3000:]
    assert 0.0 <= float(m.group(1)) <= 1.0
