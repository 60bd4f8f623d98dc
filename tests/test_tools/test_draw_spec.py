"""tools/analysis_tools/draw_spec.py (mmdet_spine.analysis.block_graph) writes the block graph
of an arch or a config as a PNG."""
import os.path as osp

import pytest

from helpers import REPO, run_tool

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


@pytest.fixture(scope='module')
def draw_spec():
    from mmdet_spine.analysis import block_graph
    return block_graph


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
    from mmdet_spine.errors import ConfigError
    with pytest.raises(ConfigError, match='valid choices'):
        draw_spec.main(['50', '--out', str(tmp_path / 'x.png')])


def test_tool_draws_and_refuses_in_one_line(tmp_path):
    tool = osp.join(REPO, 'tools', 'analysis_tools', 'draw_spec.py')
    out = tmp_path / 'spec.png'
    run_tool([tool, '49S', '--out', str(out), '--dpi', '40'])
    assert out.read_bytes()[:8] == PNG_MAGIC
    proc = run_tool([tool, '50', '--out', str(tmp_path / 'x.png')], check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr
    assert lines[-1].startswith('error: ') and "'50'" in lines[-1], lines
    assert 'valid choices' in lines[-1], lines
