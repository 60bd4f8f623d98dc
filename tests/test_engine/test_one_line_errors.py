"""Bad input to the tools is ONE line on stderr (exit code 2), a stopped run one line (exit
code 1), a failed distributed job one line naming the rank; ``--traceback`` /
``MMDET_SPINE_TRACEBACK=1`` show the traceback."""
import io
import json
import os
import sys

import pytest
import torch

from helpers import TINY_CONFIG, free_port, run_tool
from mmdet_spine.engine.cli import one_line_error, run_cli
from mmdet_spine.engine.launch import describe_failure, root_cause
from mmdet_spine.errors import (BadDataError, CheckpointSafetyError, ConfigError,
                                TRACEBACK_ENV, TrainingAborted, UserError)


def _run(main, capsys, **env):
    with pytest.raises(SystemExit) as e:
        run_cli(main)
    return e.value.code, capsys.readouterr().err


def _raise(exc):
    def main():
        raise exc
    return main


@pytest.fixture
def clean_env(monkeypatch):
    for key in (TRACEBACK_ENV, 'WORLD_SIZE', 'RANK', 'TORCHELASTIC_ERROR_FILE'):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(sys, 'argv', ['tools/train.py'])
    return monkeypatch


@pytest.mark.parametrize('exc,code,line', [
    (ConfigError("SpineNet: arch='50' is not a SpineNet architecture"), 2,
     "error: SpineNet: arch='50' is not a SpineNet architecture"),
    (CheckpointSafetyError("'x.pth' is not a readable PyTorch checkpoint"), 2,
     "error: 'x.pth' is not a readable PyTorch checkpoint"),
    (TrainingAborted('Non-finite loss at iteration 3'), 1,
     'error: Non-finite loss at iteration 3'),
    # a builder that re-raises as type(e)(prefix + msg), twice
    (ConfigError('class `RetinaNet` in mmdet/models/detectors/retinanet.py: class `SpineNet` '
                 "in mmdet_spine/models/backbones/spinenet.py: SpineNet: arch='50' is bad"), 2,
     "error: SpineNet: arch='50' is bad (while building RetinaNet > SpineNet)"),
    # re-raised from a dataloader worker by torch
    (BadDataError('Caught BadDataError in DataLoader worker process 0.\nOriginal Traceback '
                  '(most recent call last):\n  File "x.py", line 1\nmmdet_spine.errors.'
                  'BadDataError: ShapesDataset: img/001.png: image file not found'), 2,
     'error: ShapesDataset: img/001.png: image file not found'),
])
def test_user_errors_are_one_line(exc, code, line, capsys, clean_env):
    got_code, err = _run(_raise(exc), capsys)
    assert (got_code, err) == (code, line + '\n')


def test_a_user_error_wrapped_by_a_library_is_still_one_line(capsys, clean_env):
    def main():
        try:
            raise ConfigError("BiFPN: fusion='mean' is not a fusion method")
        except ConfigError as e:
            raise RuntimeError(f'while building the model: {e}') from e
    code, err = _run(main, capsys)  # our own message, the one that names the field
    assert code == 2 and err == "error: BiFPN: fusion='mean' is not a fusion method\n"


def test_raw_errors_raised_by_our_code_are_one_line_others_are_not(capsys, clean_env):
    from mmdet_spine.models.detectors.efficientdet_scaling import efficientdet_variant
    code, err = _run(lambda: efficientdet_variant('d9'), capsys)
    assert code == 2 and err.count('\n') == 1 and "variant='d9'" in err
    with pytest.raises(ValueError, match='a bug'):  # not ours: the traceback stays
        run_cli(_raise(ValueError('a bug')))
    with pytest.raises(ZeroDivisionError):
        run_cli(lambda: 1 / 0)


@pytest.mark.parametrize('how', ['env', 'flag'])
def test_traceback_switch(how, capsys, clean_env):
    if how == 'env':
        clean_env.setenv(TRACEBACK_ENV, '1')
    else:
        clean_env.setattr(sys, 'argv', ['tools/train.py', 'cfg.py', '--traceback'])
    code, err = _run(_raise(UserError('bad value')), capsys)
    assert code == 2 and 'Traceback (most recent call last)' in err
    assert err.endswith('error: bad value\n')


def test_a_failed_collective_on_a_rank(capsys, clean_env, tmp_path):
    clean_env.setenv('WORLD_SIZE', '2')
    clean_env.setenv('RANK', '1')
    gloo = RuntimeError('[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection '
                        'closed by peer [127.0.0.1]:41622')
    code, err = _run(_raise(gloo), capsys)
    assert code == 1 and err.count('\n') == 1
    assert err.startswith('error: [rank 1] a collective with the other ranks failed '
                          '(Connection closed by peer [127.0.0.1]:41622)')
    # under the launcher the rank hands its line over instead of printing it
    error_file = tmp_path / 'error.json'
    clean_env.setenv('TORCHELASTIC_ERROR_FILE', str(error_file))
    code, err = _run(_raise(ConfigError('bad arch')), capsys)
    assert (code, err) == (2, '')
    data = json.loads(error_file.read_text())
    assert data['message'] == 'bad arch' and data['mmdet_spine']['kind'] == 'user'
    # outside a distributed run the same error is an ordinary traceback
    clean_env.delenv('WORLD_SIZE')
    clean_env.delenv('TORCHELASTIC_ERROR_FILE')
    with pytest.raises(RuntimeError):
        run_cli(_raise(gloo))


class _Failure:
    """Stands for torch's ProcessFailure (same fields)."""

    def __init__(self, pid, exitcode, data=None, timestamp=100):
        self.pid, self.exitcode, self.timestamp = pid, exitcode, timestamp
        self.error_file_data = data or {}
        self.message = (data or {}).get('message', '')

    def signal_name(self):
        import signal
        return signal.Signals(-self.exitcode).name


def _recorded(message, kind, code, t):
    return {'message': message, 'timestamp': str(int(t)),
            'mmdet_spine': {'kind': kind, 'exit_code': code, 'time': t}}


def test_launcher_names_the_rank_that_failed_first_and_why():
    peer = _Failure(11, 1, _recorded('a collective with the other ranks failed (x)',
                                     'peer-lost', 1, 100.2))
    killed = _Failure(12, -9, timestamp=101)
    rank, failure = root_cause({0: peer, 1: killed})
    assert rank == 1
    assert describe_failure(rank, failure) == ('rank 1 (pid 12) was killed by SIGKILL '
                                               '(signal 9); the other ranks were stopped')
    own = _Failure(13, 2, _recorded("SpineNet: arch='50' is bad", 'user', 2, 100.5))
    rank, failure = root_cause({0: peer, 3: own})
    assert rank == 3 and describe_failure(rank, failure).startswith(
        "rank 3 failed: SpineNet: arch='50' is bad")
    silent = _Failure(14, 1)  # crashed with its own traceback, nothing recorded
    assert root_cause({0: peer, 2: silent})[0] == 2
    assert 'exited with code 1' in describe_failure(2, silent)
    # the SIGTERM the agent sends the other ranks is a consequence, never the cause
    stopped = _Failure(15, -15, timestamp=99)
    assert root_cause({0: stopped, 1: own})[0] == 1
    # every rank hit the same config error; the one that recorded it first was still exiting
    # when the agent's SIGTERM arrived (the CI race): its recorded reason is the line
    first = _Failure(16, -15, _recorded("SpineNet: arch='50' is bad", 'user', 2, 100.1))
    rank, failure = root_cause({0: own, 1: first})
    assert rank == 1 and describe_failure(rank, failure) == (
        "rank 1 failed: SpineNet: arch='50' is bad; the other ranks were stopped")
    # a rank killed outright (no reason recorded) still outranks every recorded error
    assert root_cause({0: own, 1: first, 2: killed})[0] == 2


# -- the tools, as a user runs them ---------------------------------------------------------

def _checkpoint_file(tmp_path, name, content=None):
    path = tmp_path / name
    if content is None:
        buf = io.BytesIO()
        torch.save({'state_dict': {'w': torch.randn(30000)}, 'meta': {'epoch': 1}}, buf)
        content = buf.getvalue()[:30000]  # cut within the first ~67 KB
    path.write_bytes(content)
    return str(path)


#: Configs the cases below use ({tiny} is the tiny config); written into the test's tmp dir.
CONFIGS = {
    'spinenet_50.py': "_base_ = '{tiny}'\nmodel = dict(backbone=dict(_delete_=True, "
                      "type='SpineNet', arch='50'))\n",
    'typo.py': "_base_ = '{tiny}'\nmodel = dict(neck=dict(out_channel=16))\n",
    'hook.py': "_base_ = '{tiny}'\ncustom_hooks = [dict(type='NonFiniteLossHook', "
               "action='ignore')]\n",
    'no_annotations.py': "_base_ = '{tiny}'\ntrain_dataloader = dict(dataset=dict("
                         "ann_file='{tmp}/empty_annotations.json'))\n",
}

#: (tool args, expected exit code, text the one line must contain); {tmp} is the tmp dir.
TOOL_CASES = {
    'resume a text file': (['tools/train.py', TINY_CONFIG, '--resume', '{tmp}/hello.pth'], 2,
                           'hello.pth'),
    'resume a cut file': (['tools/train.py', TINY_CONFIG, '--resume', '{tmp}/cut.pth'], 2,
                          'cut.pth'),
    'test a text file': (['tools/test.py', TINY_CONFIG, '{tmp}/hello.pth'], 2,
                         'is not a readable PyTorch checkpoint'),
    'test an html page': (['tools/test.py', TINY_CONFIG, '{tmp}/page.pth'], 2, 'page.pth'),
    'unknown backbone arch': (['tools/train.py', '{tmp}/spinenet_50.py'], 2,
                              "arch='50' is not a SpineNet architecture"),
    'argument typo': (['tools/train.py', '{tmp}/typo.py'], 2,
                      "unexpected keyword argument 'out_channel'"),
    'unknown type': (['tools/train.py', TINY_CONFIG, '--cfg-options',
                      'model.neck.type=NoSuchNeck'], 2, 'NoSuchNeck is not in the'),
    'bad dist timeout': (['tools/train.py', TINY_CONFIG, '--launcher', 'pytorch',
                          '--cfg-options', 'env_cfg.dist_cfg.timeout=soon'], 2,
                         'env_cfg.dist_cfg.timeout must be a positive number'),
    'gpu amp on the cpu': (['tools/train.py', TINY_CONFIG, '--cfg-options',
                            'optim_wrapper.type=AmpOptimWrapper'], 2,
                           "optim_wrapper.type='AmpOptimWrapper' needs a GPU"),
    'bad hook action': (['tools/train.py', '{tmp}/hook.py'], 2, "action='ignore' is not one of"),
    'unparsable cfg-options': (['tools/train.py', TINY_CONFIG, '--cfg-options',
                                "custom_hooks=[dict(type='NonFiniteLossHook',action='skip')]"],
                               2, '--cfg-options: a value mmengine cannot parse'),
    'dict in cfg-options': (['tools/train.py', TINY_CONFIG, '--cfg-options',
                             "custom_hooks=[dict(type='NonFiniteLossHook')]"], 2,
                            'dict(...) is not parsed by --cfg-options'),
    'lr overflows float32': (['tools/train.py', TINY_CONFIG, '--cfg-options',
                              'optim_wrapper.optimizer.lr=1e39'], 1,
                             'lr=1e+39 does not fit float32'),
    'no annotations at all': (['tools/train.py', '{tmp}/no_annotations.py'], 2,
                              'none of its 16 images has an annotation'),
    # the same config error on both ranks of a distributed job: one line for the job
    'distributed config error': (['bash', 'tools/dist_train.sh', '{tmp}/spinenet_50.py', '2'],
                                 2, "failed: SpineNet: arch='50' is not a SpineNet"),
}


def _prepare(tmp_path, tiny_shapes):
    _checkpoint_file(tmp_path, 'hello.pth', b'hello')
    _checkpoint_file(tmp_path, 'cut.pth')
    _checkpoint_file(tmp_path, 'page.pth', b'<!DOCTYPE html><html><body>Sign in</body></html>')
    with open(os.path.join(tiny_shapes, 'annotations', 'instances_train.json')) as f:
        coco = json.load(f)
    coco['annotations'] = []
    (tmp_path / 'empty_annotations.json').write_text(json.dumps(coco))
    for name, text in CONFIGS.items():
        (tmp_path / name).write_text(text.format(tiny=TINY_CONFIG, tmp=tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize('case', sorted(TOOL_CASES))
def test_tools_print_one_line(case, tiny_shapes, tmp_path):
    _prepare(tmp_path, tiny_shapes)
    args, code, text = TOOL_CASES[case]
    args = [a.replace('{tmp}', str(tmp_path)) for a in args]
    env = None
    if '--launcher' in args:
        env = {'WORLD_SIZE': '1', 'RANK': '0', 'MASTER_ADDR': '127.0.0.1',
               'MASTER_PORT': str(free_port())}
    elif args[0] == 'bash':
        env = {'PORT': str(free_port()), 'PYTHON': sys.executable}
    proc = run_tool(args + ['--work-dir', str(tmp_path / 'w')], shapes_root=tiny_shapes,
                    check=False, env=env)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == code, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert text in lines[-1] and lines[-1].startswith(('error: ', 'train.py: error: ')), lines
    assert sum('error: ' in line for line in lines) == 1
