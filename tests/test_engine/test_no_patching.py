"""Importing mmdet_spine rewrites nothing of mmengine, mmcv or mmdet: it only registers.

Each check runs in a fresh interpreter: the libraries are imported first, their module
attributes and registries are snapshotted, then ``import mmdet_spine`` runs and the snapshot
is compared. Adding submodule attributes (a package gains ``.ops`` when it is imported) and new
registry names is what importing and registering do; replacing anything is not.
"""
import json
import subprocess
import sys
import textwrap

from helpers import REPO

MODULES = ['mmengine.runner.checkpoint', 'mmengine.runner', 'mmengine.runner.runner',
           'mmengine.fileio', 'mmengine.fileio.io', 'mmengine.hooks', 'mmengine.utils.dl_utils',
           'mmcv', 'mmcv.cnn', 'mmcv.cnn.bricks', 'mmcv.cnn.bricks.activation',
           'mmcv.cnn.bricks.swish', 'mmdet.apis', 'mmdet.models', 'torch.hub']

SCRIPT = textwrap.dedent('''
    import importlib, inspect, json, sys, types
    mods = {m: importlib.import_module(m) for m in json.loads(sys.argv[1])}
    import mmdet.models, mmdet.datasets, mmdet.engine  # noqa: F401
    from mmengine.registry import MODELS, HOOKS, RUNNERS, DATASETS
    from mmdet import registry as det
    regs = {'mmengine.MODELS': MODELS, 'mmengine.HOOKS': HOOKS, 'mmengine.RUNNERS': RUNNERS,
            'mmengine.DATASETS': DATASETS, 'mmdet.MODELS': det.MODELS, 'mmdet.HOOKS': det.HOOKS,
            'mmdet.DATASETS': det.DATASETS, 'mmdet.RUNNERS': det.RUNNERS}

    def snap():
        attrs = {m: {k: id(v) for k, v in vars(mod).items()} for m, mod in mods.items()}
        names = {r: {k: id(v) for k, v in reg.module_dict.items()} for r, reg in regs.items()}
        return attrs, names

    before_attrs, before_names = snap()
    import mmdet_spine  # noqa: F401
    after_attrs, after_names = snap()
    changed = [f'{m}.{k}' for m in mods for k, v in before_attrs[m].items()
               if after_attrs[m].get(k) != v]
    added = [f'{m}.{k}' for m in mods for k in after_attrs[m]
             if k not in before_attrs[m] and not isinstance(vars(mods[m])[k], types.ModuleType)]
    taken = [f'{r}:{k}' for r in regs for k, v in before_names[r].items()
             if after_names[r].get(k) != v]
    from mmcv.cnn import build_activation_layer
    from mmcv.cnn.bricks.swish import Swish
    from mmengine.runner.checkpoint import CheckpointLoader
    print(json.dumps(dict(
        changed=changed, added=added, taken=taken,
        swish=type(build_activation_layer(dict(type='Swish'))) is Swish,
        swish_registered=MODELS.get('Swish') is Swish,
        silu=type(build_activation_layer(dict(type='SiLU'))).__module__,
        schemes={p: f'{f.__module__}.{f.__name__}'
                 for p, f in CheckpointLoader._schemes.items()},
        runner=RUNNERS.get('SpineRunner').__module__)))
''')


def _run():
    proc = subprocess.run([sys.executable, '-c', SCRIPT, json.dumps(MODULES)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_changes_no_attribute_of_mmengine_mmcv_or_mmdet():
    out = _run()
    assert out['changed'] == [] and out['added'] == []
    # nothing registered under a name another library already had
    assert out['taken'] == []
    # mmcv's Swish is still mmcv's; ours is mmcv's registered SiLU (torch.nn.SiLU)
    assert out['swish'] and out['swish_registered']
    assert out['silu'] == 'torch.nn.modules.activation'
    # what was registered: our schemes (CheckpointLoader.register_scheme) and runner
    schemes = out['schemes']
    for prefix in ('', 'http://', 'https://', 'torchvision://', 'modelzoo://',
                   'open-mmlab://', 'openmmlab://', 'mmcls://'):
        assert schemes[prefix].startswith('mmdet_spine.engine.checkpoint_safety.'), prefix
    assert schemes['zoo://'] == 'mmdet_spine.zoo.checkpoint_loader.load_from_zoo'
    assert out['runner'] == 'mmdet_spine.engine.runner'



def test_old_import_locations_are_the_one_error_classes():
    from mmdet_spine import errors
    from mmdet_spine.datasets import BadDataError
    from mmdet_spine.engine import CheckpointSafetyError
    from mmdet_spine.engine.cli import UserError
    from mmdet_spine.engine.nonfinite_loss import TrainingAborted
    from mmdet_spine.zoo import ZooError
    assert (UserError, CheckpointSafetyError, ZooError, BadDataError, TrainingAborted) == (
        errors.UserError, errors.CheckpointSafetyError, errors.ZooError, errors.BadDataError,
        errors.TrainingAborted)
    assert issubclass(errors.CheckpointIntegrityError, CheckpointSafetyError)
