"""For mmpretrain users: our backbones, neck and datasets in mmpretrain's registries, every
configs/spinenet_cls/mmpretrain config building and stepping with mmpretrain's
ImageClassifier / LinearClsHead, the same numbers as our own SpineClassifier, and a short
training run by mmengine's Runner in mmpretrain's scope.

mmpretrain 1.2.0 imports torchvision at module level, which cannot load on this CPU torch:
it is imported behind tests/torchvision_standin.py (nothing of torchvision runs).
requirements/mmpretrain.txt installs it (make setup-test), so this runs in CI.
"""
import glob
import math
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from helpers import REPO

MMPRETRAIN_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'spinenet_cls', 'mmpretrain',
                                               '*.py')))
OURS_TINY = osp.join(REPO, 'configs', 'spinenet_cls', 'spinenet-49s-tiny_1xb32-10e_shapes-cls.py')
THEIRS_TINY = osp.join(REPO, 'configs', 'spinenet_cls', 'mmpretrain',
                       'spinenet-49s-tiny_1xb32-10e_shapes-cls.py')
SIZE = 64


@pytest.fixture(scope='module')
def mmpretrain():
    """mmpretrain, imported behind the torchvision stand-in, with our modules registered."""
    import torchvision_standin
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torchvision_standin.install()
    try:
        import mmpretrain
        import mmpretrain.models  # noqa: F401  (what the registry's locations import)
        import mmdet_spine.classification.mmpretrain_models  # noqa: F401
        yield mmpretrain
    finally:
        torchvision_standin.uninstall()
        torch.set_num_threads(threads)


def test_only_the_mmpretrain_module_imports_mmpretrain():
    """Users without mmpretrain are unaffected: no other package module imports it, and the
    package (classification included) imports and builds with mmpretrain unimportable."""
    package = osp.join(REPO, 'mmdet_spine')
    importers = set()
    for path in glob.glob(osp.join(package, '**', '*.py'), recursive=True):
        with open(path) as f:
            if re.search(r'^\s*(import|from) mmpretrain', f.read(), re.M):
                importers.add(osp.relpath(path, package))
    assert importers == {osp.join('classification', 'mmpretrain_models.py')}
    code = '\n'.join([
        'import sys',
        'class Block:',
        '    def find_spec(self, name, path=None, target=None):',
        "        if name.split('.')[0] == 'mmpretrain':",
        "            raise ImportError('mmpretrain is not installed')",
        'sys.meta_path.insert(0, Block())',
        'import mmdet_spine',
        'from mmdet.registry import MODELS',
        "m = MODELS.build(dict(type='SpineClassifier', backbone=dict(type='SpineNet', "
        "arch='49S'), head=dict(type='LinearClassificationHead', num_classes=3)))",
        "assert not any(n.split('.')[0] == 'mmpretrain' for n in sys.modules)",
        'try:',
        '    import mmdet_spine.classification.mmpretrain_models',
        'except mmdet_spine.errors.UserError as e:',
        "    assert 'needs an importable mmpretrain' in str(e), e",
        'else:',
        "    raise AssertionError('no error without mmpretrain')",
    ])
    subprocess.run([sys.executable, '-c', code], check=True, cwd=REPO, timeout=300)


def test_registered_into_mmpretrain(mmpretrain):
    from mmpretrain.registry import DATASETS, MODELS

    from mmdet_spine.classification import (ImageClassificationDataset, PyramidAveragePooling,
                                            ShapesClassificationDataset)
    from mmdet_spine.classification.mmpretrain_models import REGISTERED_MODELS, register_into
    from mmdet_spine.errors import UserError
    from mmdet_spine.models.backbones import SpineNet, SpineNetMobile, SpineResNet
    for name, cls in (('SpineNet', SpineNet), ('SpineNetMobile', SpineNetMobile),
                      ('SpineResNet', SpineResNet),
                      ('PyramidAveragePooling', PyramidAveragePooling)):
        assert MODELS.get(name) is cls
    assert DATASETS.get('ImageClassificationDataset') is ImageClassificationDataset
    assert DATASETS.get('ShapesClassificationDataset') is ShapesClassificationDataset
    register_into(MODELS, REGISTERED_MODELS)  # again: a no-op
    # never takes over one of mmpretrain's own names
    with pytest.raises(UserError, match="already registers 'ResNet'"):
        register_into(MODELS, {'ResNet': SpineNet})
    assert MODELS.get('ResNet').__module__.startswith('mmpretrain')


def _step(model, num_classes, backward):
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(0)
    imgs = [torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8, generator=g)
            for _ in range(2)]
    samples = [DataSample().set_gt_label(i % num_classes) for i in (0, 1)]
    data = model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    assert math.isfinite(loss.item())
    if backward:
        loss.backward()
        stem = model.backbone.stem_conv.conv.weight
        assert stem.grad is not None and stem.grad.abs().sum() > 0


@pytest.mark.parametrize('path', MMPRETRAIN_CONFIGS, ids=osp.basename)
def test_mmpretrain_config_builds_and_steps(mmpretrain, path):
    from mmpretrain.models import ImageClassifier, LinearClsHead
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.custom_imports.imports == ['mmdet_spine.classification.mmpretrain_models']
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    assert isinstance(model, ImageClassifier) and isinstance(model.head, LinearClsHead)
    assert model.head.fc.in_features == model.backbone.out_channels[-1]
    n_params = sum(p.numel() for p in model.parameters())
    _step(model, cfg.model.head.num_classes, backward=n_params < 30e6)


def _build(path, scope):
    cfg = Config.fromfile(path)
    init_default_scope(scope)
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmpretrain.registry import MODELS
    return cfg, MODELS.build(cfg.model)


def test_mmpretrain_image_classifier_equals_spine_classifier(mmpretrain):
    """The same weights give the same preprocessing, logits and label-smoothed loss."""
    from mmengine.structures import BaseDataElement
    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    _, ours = _build(OURS_TINY, 'mmdet')
    ours.init_weights()
    _, theirs = _build(THEIRS_TINY, 'mmpretrain')
    theirs.load_state_dict(ours.state_dict(), strict=True)
    ours.train()
    theirs.train()
    imgs = [torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8) for _ in range(4)]
    labels = [0, 3, 5, 1]
    a = ours.data_preprocessor(dict(inputs=imgs, data_samples=[
        BaseDataElement(gt_label=torch.tensor([lab])) for lab in labels]), True)
    b = theirs.data_preprocessor(dict(inputs=imgs, data_samples=[
        DataSample().set_gt_label(lab) for lab in labels]), True)
    torch.testing.assert_close(a['inputs'], b['inputs'])
    torch.manual_seed(1)
    ours_loss = ours(**a, mode='loss')['loss_cls']
    torch.manual_seed(1)
    theirs_loss = theirs(**b, mode='loss')['loss']
    torch.testing.assert_close(ours_loss, theirs_loss, rtol=1e-5, atol=1e-6)
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(a['inputs']), theirs(b['inputs']), rtol=1e-5,
                                   atol=1e-6)


def test_mmpretrain_runner_trains_on_the_shapes_dataset(mmpretrain, tmp_path):
    """mmpretrain's way of training (mmengine's Runner in the mmpretrain scope, its data
    pipeline, LinearClsHead and Accuracy metric) on a small generated shapes dataset."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(THEIRS_TINY)
    tiny = dict(num_train_per_class=8, num_val_per_class=4, img_size=32, seed=0)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = str(tmp_path / 'shapes_cls') + '/'
        loader.dataset.generate_cfg = tiny
    cfg.train_cfg.max_epochs = cfg.train_cfg.val_interval = 1
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0)]
    cfg.optim_wrapper.optimizer.lr = 0.02
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val()
    assert set(metrics) == {'accuracy/top1', 'accuracy/top5'}
    assert 0 <= metrics['accuracy/top1'] <= 100 and metrics['accuracy/top5'] > 0
    assert len(runner.val_dataloader.dataset) == 4 * 6
    assert osp.isfile(osp.join(cfg.work_dir, 'epoch_1.pth'))
