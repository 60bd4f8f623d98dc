"""The README's architecture tables are generated from the code's tables and must not drift."""
import importlib.util
import os.path as osp

from helpers import REPO


def test_readme_tables_match_the_code():
    spec = importlib.util.spec_from_file_location(
        'readme_tables', osp.join(REPO, 'tools', 'misc', 'readme_tables.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with open(osp.join(REPO, 'README.md')) as f:
        current = f.read()
    assert mod.render(current) == current, \
        'README.md tables drifted: run python tools/misc/readme_tables.py --write'
    assert '| EfficientDet-D0 | 512 | EfficientNet-B0 | 64 | 3 | 3 |' in current
    assert '| SpineNet-49 | 256 | 1.0 | 0.5 | 1 | 21,831,488 |' in current
    assert '| `efficientdet-d0_effdet` | [efficientdet_d0_bifpn_8xb16-300e_coco]' in current
    assert '| 512 | 3.9 M | 2.6 G | 34.3 | [tf_efficientdet_d0_34-f153e0cf.pth]' in current
