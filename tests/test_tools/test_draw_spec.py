"""tools/analysis_tools/draw_spec.py writes the block graph of an arch or a config as a PNG."""
import os.path as osp

import pytest

from helpers import REPO, load_tool

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


@pytest.fixture(scope='module')
def draw_spec():
    return load_tool(osp.join(REPO, 'tools', 'analysis_tools', 'draw_spec.py'), 'draw_spec')


@pytest.mark.parametrize('source', [
    '49',
    'mobile-49XS',
    osp.join(REPO, 'configs', 'spinenet', 'retinanet_spinenet-49s_32xb8-lsj-500e_coco-640.py'),
], ids=['arch-49', 'arch-mobile-49XS', 'config-49s'])
def test_writes_png(draw_spec, tmp_path, source):
    out = tmp_path / 'spec.png'
    draw_spec.main([source, '--out', str(out), '--dpi', '60'])
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000


def test_uses_the_backbone_plan(draw_spec):
    """Levels 3-7 prune the 16th (level-2) spec; min level 2 keeps it."""
    model = draw_spec.build_backbone(draw_spec.backbone_cfg('49'))
    assert model.plan.kept.count(False) == 1 and not model.plan.kept[15]
    model = draw_spec.build_backbone(draw_spec.backbone_cfg('49', min_level=2))
    assert all(model.plan.kept)


def test_rejects_unknown_arch(draw_spec, tmp_path):
    with pytest.raises(SystemExit, match='valid choices'):
        draw_spec.main(['50', '--out', str(tmp_path / 'x.png')])
