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
