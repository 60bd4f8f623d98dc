import subprocess
import sys

import pytest
from mmengine.config import Config

from helpers import REPO


def test_import_registers_into_mmdet_registries():
    import mmdet_spine  # noqa: F401
    from mmdet.registry import DATASETS
    assert DATASETS.get('ShapesDataset') is not None


def test_mmdet_own_train_tool_accepts_our_configs():
    """custom_imports + default_scope make a plain mmdet config load and build our modules."""
    code = ('from mmengine.config import Config; from mmengine.registry import init_default_scope;'
            f"cfg = Config.fromfile('{REPO}/configs/demo/retinanet_r18-half_fpn_6e_shapes.py');"
            "init_default_scope(cfg.default_scope);"
            'from mmdet.registry import DATASETS; import sys;'
            "print(DATASETS.get(cfg.train_dataloader.dataset.type).__module__)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd='/')
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'mmdet_spine.datasets.shapes'


def test_unknown_type_hints_at_custom_imports():
    from mmdet_spine.engine.cli import UserError, registry_hint
    from mmdet.registry import MODELS
    cfg = Config(dict(model=dict(type='NoSuchNet')))
    with pytest.raises(UserError, match="custom_imports.*mmdet_spine"):
        with registry_hint(cfg):
            MODELS.build(cfg.model)


def test_every_config_gets_the_spine_runner_and_atomic_checkpoints():
    """All configs (ours, the tests' tiny one, the demo) inherit default_runtime: they build
    SpineRunner (as mmdet's tools/train.py does, via RUNNERS and runner_type) and save with
    AtomicCheckpointHook."""
    import glob
    import os.path as osp
    from mmengine.registry import RUNNERS
    from mmdet_spine.engine import SpineRunner
    # one config of every family folder (the smallest name: a shapes one where there is one),
    # the demo and the tests' tiny config; mmpretrain's configs use mmpretrain's runtime
    families = sorted({osp.dirname(p) for p in
                       glob.glob(osp.join(REPO, 'configs', '*', '*.py')) if '_base_' not in p})
    paths = [min(glob.glob(osp.join(d, '*.py')), key=lambda p: ('shapes' not in p, len(p)))
             for d in families]
    paths.append(osp.join(REPO, 'tests', 'data', 'configs', 'tiny_retinanet_shapes.py'))
    assert len(paths) >= 5
    for path in paths:
        cfg = Config.fromfile(path)
        assert cfg.get('runner_type') == 'SpineRunner', path
        assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook', path
    assert RUNNERS.get('SpineRunner') is SpineRunner
