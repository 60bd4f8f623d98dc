"""tools/demo.py (``make demo``) end to end on the tiny config: it reports the mAP of the
training's final validation (no second evaluation), falls back to one validation when the
config skips it, and draws predictions with the weights that were evaluated (the EMA's where
the config averages them)."""
import glob
import os.path as osp
import re

import pytest

from helpers import TINY_CONFIG, run_tool

FINISHED = re.compile(r'Demo finished in [\d.]+ min: COCO bbox mAP@\[\.5:\.95\] = ([\d.]+) '
                      r'\(mAP@\.5 = ([\d.]+)\); predictions drawn in (\S+)/')
VAL_LINE = re.compile(r'coco/bbox_mAP: ([\d.]+)')


def _demo(config, tiny_shapes, tmp_path):
    work = str(tmp_path / 'demo')
    proc = run_tool(['tools/demo.py', '--config', config, '--work-dir', work, '--num-vis', '3',
                     '--amp', 'off'], shapes_root=tiny_shapes)
    text = proc.stdout + proc.stderr
    found = FINISHED.search(text)
    assert found, text[-3000:]
    bbox_map, map50, out_dir = float(found.group(1)), float(found.group(2)), found.group(3)
    assert 0.0 <= bbox_map <= map50 <= 1.0
    pngs = glob.glob(osp.join(out_dir, '*.png'))
    assert len(pngs) == 3 and all(osp.getsize(p) > 1000 for p in pngs)
    return text, bbox_map


@pytest.mark.slow
def test_demo_reports_the_final_validation(tiny_shapes, tmp_path):
    text, bbox_map = _demo(TINY_CONFIG, tiny_shapes, tmp_path)
    evaluated = VAL_LINE.findall(text)
    assert len(evaluated) == 1, evaluated  # the training's validation, not a second one
    assert float(evaluated[0]) == pytest.approx(bbox_map, abs=1e-3)


@pytest.mark.slow
def test_demo_with_ema_and_no_validation_in_training(tiny_shapes, tmp_path):
    config = tmp_path / 'ema.py'
    config.write_text(
        f"_base_ = '{TINY_CONFIG}'\n"
        "train_cfg = dict(val_interval=100)\n"  # the training never validates
        "custom_hooks = [dict(type='EMAHook', momentum=0.5, update_buffers=True, "
        "priority=49)]\n")
    text, bbox_map = _demo(str(config), tiny_shapes, tmp_path)
    evaluated = VAL_LINE.findall(text)
    assert len(evaluated) == 1, evaluated  # the demo's own validation
    assert float(evaluated[0]) == pytest.approx(bbox_map, abs=1e-3)
