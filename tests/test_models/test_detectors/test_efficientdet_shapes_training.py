"""EfficientDet-D0 (the D0 table row, 256 px) learns on the shapes data on a CPU."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from helpers import REPO

CONFIG = osp.join(REPO, 'configs', 'efficientdet', 'efficientdet_d0-shapes_bifpn_8xb8-5e_shapes.py')


def test_d0_shapes_loss_falls(tiny_shapes):
    init_default_scope('mmdet')
    cfg = Config.fromfile(CONFIG)
    loader_cfg = cfg.train_dataloader
    loader_cfg.update(batch_size=4, num_workers=0, persistent_workers=False)
    loader_cfg.dataset.update(data_root=tiny_shapes, generate_cfg=dict(
        num_train=16, num_val=8, img_size=128, max_objects=3, max_size=48))
    loader_cfg.dataset.pipeline = [p for p in loader_cfg.dataset.pipeline
                                   if p['type'] != 'RandomFlip']  # same batch every step
    loader_cfg.sampler = dict(type='DefaultSampler', shuffle=False)  # the same batch every run
    batch = next(iter(Runner.build_dataloader(loader_cfg)))
    from mmdet.registry import MODELS
    torch.manual_seed(0)  # the same initial weights every run
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    assert sum(p.numel() for p in model.backbone.parameters()) > 3e6  # the real B0
    optim = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(20):
        data = model.data_preprocessor(batch, True)
        assert data['inputs'].shape[-2:] == (256, 256)
        loss, _ = model.parse_losses(model(**data, mode='loss'))
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10)
        optim.step()
        losses.append(float(loss))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert min(losses[-3:]) < 0.7 * losses[0], losses
