"""Each bad config value given to ``tools/train.py --cfg-options`` ends the run at build time
with exit code 2 and one line on stderr that names the field: never a traceback, never a run
that goes on with the value (#14).

Every row is built in this process the way ``tools/train.py`` builds it (``load_config`` with
the parsed ``--cfg-options``, the detector built from the registry) and its error formatted by
the tools' own one-line formatter (``one_line_error``, what ``run_cli`` prints); a few rows
also run as ``python tools/train.py`` processes, as a user types them (each costs an
interpreter start, so only a few).
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
from mmengine.config import DictAction
from mmengine.registry import init_default_scope

from helpers import REPO
from mmdet.registry import MODELS
from mmdet_spine.engine.cli import load_config, one_line_error, registry_hint

SPINE = 'configs/spinenet/retinanet_spinenet-49s-tiny_8xb8-12e_shapes.py'
MASK = 'configs/spinenet/mask-rcnn_spinenet-49s-tiny_8xb8-8e_shapes.py'
MOBILE = 'configs/spinenet/retinanet_spinenet-mobile-49xs_32xb8-lsj-500e_coco-256.py'
RESNET = 'configs/spineresnet/retinanet_spineresnet-50_fpn_32xb8-lsj-50e_coco-640.py'
EFFDET = 'configs/efficientdet/efficientdet_d0-shapes_bifpn_8xb8-5e_shapes.py'

#: Appended to every command-line row: should the model build after all, the run stops at its
#: train loop (an unknown loop type) instead of reading data. A line naming it (or, in this
#: process, a model that builds) means "accepted silently".
GUARD = 'SilentlyAcceptedGuard'

# (id, config, --cfg-options, what the one line must contain: the field and its value)
ROWS = [
    ('spinenet arch', SPINE, ['model.backbone.arch=50L'], "arch='50L'"),
    ('spinenet fusion', SPINE, ['model.backbone.fusion=avg'], "fusion='avg'"),
    ('spinenet min_level > max_level', SPINE,
     ['model.backbone.min_level=6', 'model.backbone.max_level=4'], 'min_level=6'),
    ('spinenet level', SPINE, ['model.backbone.max_level=9'], 'max_level=9'),
    ('spinenet norm type', SPINE, ['model.backbone.norm_cfg.type=BatchNorm3'],
     "norm_cfg.type='BatchNorm3'"),
    ('spinenet act type', SPINE, ['model.backbone.act_cfg.type=Swishy'],
     "act_cfg.type='Swishy'"),
    ('spinenet filter_size_scale < 0', SPINE, ['model.backbone.filter_size_scale=-1'],
     'filter_size_scale=-1'),
    ('spinenet filter_size_scale = 0', SPINE, ['model.backbone.filter_size_scale=0'],
     'filter_size_scale=0'),
    ('spinenet endpoints_num_filters = 0', SPINE, ['model.backbone.endpoints_num_filters=0'],
     'endpoints_num_filters=0'),
    ('spinenet endpoints_num_filters < 0', SPINE,
     ['model.backbone.endpoints_num_filters=-64'], 'endpoints_num_filters=-64'),
    ('spinenet resample_alpha', SPINE, ['model.backbone.resample_alpha=0'],
     'resample_alpha=0'),
    ('spinenet block_repeats', SPINE, ['model.backbone.block_repeats=0'], 'block_repeats=0'),
    ('spinenet drop_path_rate', SPINE, ['model.backbone.drop_path_rate=1.5'],
     'drop_path_rate=1.5'),
    ('spinenet frozen_stages', SPINE, ['model.backbone.frozen_stages=99'], 'frozen_stages=99'),
    ('spinenet padding_mode', SPINE, ['model.backbone.padding_mode=same'],
     "padding_mode='same'"),
    ('retina head stacked_convs', SPINE, ['model.bbox_head.stacked_convs=0'],
     'stacked_convs=0'),
    ('retina head num_ins', SPINE, ['model.bbox_head.num_ins=4'], 'num_ins=4'),
    ('mobile se_ratio', MOBILE, ['model.backbone.se_ratio=0'], 'se_ratio=0'),
    ('mobile arch', MOBILE, ['model.backbone.arch=96'], 'arch=96'),
    ('spineresnet depth', RESNET, ['model.backbone.depth=42'], 'depth=42'),
    ('spineresnet drop_path_rate', RESNET, ['model.backbone.drop_path_rate=-0.5'],
     'drop_path_rate=-0.5'),
    ('spineresnet base_channels', RESNET, ['model.backbone.base_channels=0'],
     'base_channels=0'),
    ('spineresnet strides', RESNET, ['model.backbone.strides=(1,0,2,2)'], 'strides[1]=0'),
    ('rpn num_convs', MASK, ['model.rpn_head.num_convs=0'], 'num_convs=0'),
    ('bbox head fc_out_channels', MASK, ['model.roi_head.bbox_head.fc_out_channels=0'],
     'fc_out_channels=0'),
    ('mask head kernel', MASK, ['model.roi_head.mask_head.conv_kernel_size=2'],
     'conv_kernel_size=2'),
    # EfficientDet rows (validated by the EfficientDet modules)
    ('efficientdet input size', EFFDET, ['model.neck.input_size=500'], 'input_size'),
    ('tfefficientnet drop_path_rate < 0', EFFDET, ['model.backbone.drop_path_rate=-0.5'],
     'drop_path_rate=-0.5'),
    ('tfefficientnet drop_path_rate > 1', EFFDET, ['model.backbone.drop_path_rate=1.5'],
     'drop_path_rate=1.5'),
]

#: Rows also run as their own ``python tools/train.py`` process (concurrently).
SUBPROCESS_ROWS = ('spinenet endpoints_num_filters = 0', 'spineresnet depth',
                   'tfefficientnet drop_path_rate < 0')
ROW = {r[0]: r for r in ROWS}


#: A Python warning on stderr (``file.py:17: UserWarning: ...`` and its indented source line):
#: libraries' deprecation notices (mmengine's ``pkg_resources`` for ``mmdet::`` bases), not
#: part of the error report.
_WARNING = re.compile(r'^\S+:\d+: \w*Warning: ')


def error_lines(stderr):
    """The non-empty stderr lines, less Python warnings."""
    lines, skip_source = [], False
    for line in stderr.splitlines():
        if _WARNING.match(line):
            skip_source = True
        elif skip_source and line.startswith('  '):
            skip_source = False
        elif line.strip():
            skip_source = False
            lines.append(line)
    return lines


def classify(row, code, stderr):
    """'one line' (the rule), 'silent' (the model was built), 'traceback' or 'unclear'."""
    lines = error_lines(stderr)
    if GUARD in stderr:
        return 'silent'
    if 'Traceback' in stderr:
        return 'traceback'
    if code == 2 and len(lines) == 1 and lines[0].startswith('error: ') and row[3] in lines[0]:
        return 'one line'
    return 'unclear'


def build_row(row, work_dir):
    """(exit code, stderr) of ``tools/train.py`` up to the model build, in this process."""
    _, config, options, _ = row
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    cfg_options = parser.parse_args(['--cfg-options', *options]).cfg_options
    try:
        cfg = load_config(osp.join(REPO, config), cfg_options, work_dir)
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        with registry_hint(cfg):
            MODELS.build(cfg.model)
    except Exception as e:  # noqa: BLE001
        verdict = one_line_error(e)
        if verdict is None:  # run_cli re-raises it: a traceback
            return 1, f'Traceback (most recent call last):\n{type(e).__name__}: {e}\n'
        code, message = verdict
        return code, f'error: {message}\n'
    return 0, f'the model was built: {GUARD}\n'


@pytest.mark.parametrize('row', ROWS, ids=[r[0] for r in ROWS])
def test_bad_value_is_one_line_naming_the_field(row, tmp_path):
    code, stderr = build_row(row, str(tmp_path))
    verdict = classify(row, code, stderr)
    assert verdict == 'one line', f'{verdict}: exit code {code}, stderr:\n{stderr[-3000:]}'


def train_argv(row, work_dir):
    _, config, options, _ = row
    return ['tools/train.py', config, '--work-dir', work_dir, '--cfg-options', *options,
            f'train_cfg.type={GUARD}']


@pytest.mark.slow
def test_bad_values_from_the_command_line(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env.pop('MMDET_SPINE_TRACEBACK', None)
    procs = {}
    for i, name in enumerate(SUBPROCESS_ROWS):
        procs[name] = subprocess.Popen(
            [sys.executable] + train_argv(ROW[name], str(tmp_path / str(i))), cwd=REPO,
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    failures = []
    for name, proc in procs.items():
        _, stderr = proc.communicate(timeout=600)
        verdict = classify(ROW[name], proc.returncode, stderr)
        if verdict != 'one line':
            failures.append(f'{name}: {verdict}, exit code {proc.returncode}, stderr:\n'
                            f'{stderr[-2000:]}')
    assert not failures, '\n\n'.join(failures)


def test_error_lines_skip_warnings_only():
    stderr = ('/x/package_utils.py:17: UserWarning: pkg_resources is deprecated\n'
              '  import pkg_resources\n\nerror: SpineNet: filter_size_scale=-1 must be > 0\n')
    assert error_lines(stderr) == ['error: SpineNet: filter_size_scale=-1 must be > 0']
    row = ROW['spinenet filter_size_scale < 0']
    assert classify(row, 2, stderr) == 'one line'
    assert classify(row, 1, stderr) == 'unclear'
    assert classify(row, 2, 'Traceback (most recent call last):\n  ...\n' + stderr) == \
        'traceback'
    assert classify(row, 2, stderr + 'error: two\n') == 'unclear'
    assert classify(row, 2, f'error: {GUARD} is not in the loop registry\n') == 'silent'


def test_rows_name_their_field():
    assert len(ROW) == len(ROWS) and set(SUBPROCESS_ROWS) <= set(ROW)
    for _, config, options, expect in ROWS:
        assert osp.isfile(osp.join(REPO, config)), config
        field = expect.split('=')[0].split('[')[0].split('.')[0]
        assert any(field in o for o in options), (field, options)
