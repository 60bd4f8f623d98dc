"""Channels-last execution (mmdet_spine.models.utils.convert_to_channels_last, ChannelsLastHook)."""
import copy
import subprocess
import sys
import logging
from types import SimpleNamespace

import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

import mmdet_spine  # noqa: F401
from helpers import REPO
from mmdet_spine.engine import ChannelsLastHook
from mmdet_spine.models.utils import convert_to_channels_last
from test_conv_bn_fusion import randomized

register_all_modules()
RETINANET = f'{REPO}/configs/spinenet/retinanet_spinenet-49s-tiny_8xb8-12e_shapes.py'
MASK_RCNN = f'{REPO}/configs/spinenet/mask-rcnn_spinenet-49s-tiny_8xb8-8e_shapes.py'
CL = torch.channels_last


def samples(n, size, with_masks=False):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    out = []
    for i in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                        pad_shape=(size, size), batch_input_shape=(size, size),
                                        scale_factor=(1.0, 1.0)))
        boxes = torch.tensor([[10., 12., 60., 70.], [50., 40., 110., 100.]]) + i
        gt = InstanceData(bboxes=boxes, labels=torch.tensor([0, 1]))
        if with_masks:
            m = torch.zeros(2, size, size, dtype=torch.uint8)
            for j, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
                m[j, y0:y1, x0:x1] = 1
            gt.masks = BitmapMasks(m.numpy(), size, size)
        s.gt_instances = gt
        out.append(s)
    return out


def flat(outputs):
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for o in outputs for t in flat(o)]


def same_proposals(ref, cl):
    """The RoI heads of both models train on the reference's RPN proposals.

    Proposals are rounded differently in the two layouts (measured: up to 7e-4 px), and one
    that crosses an IoU threshold or swaps places with a tied score changes which RoIs are
    sampled, so end-to-end losses of random-init Mask R-CNNs differ by ~0.3 %. Each model's
    RPN still computes its own losses (and gradients); only the proposals handed on are the
    reference's, so the RoI heads, RoIAlign included, are compared on identical boxes."""
    ref_rpn, cl_rpn, handed = ref.rpn_head.loss_and_predict, cl.rpn_head.loss_and_predict, []

    def ref_loss_and_predict(*args, **kwargs):
        losses, proposals = ref_rpn(*args, **kwargs)
        handed[:] = [copy.deepcopy(proposals)]
        return losses, proposals

    def cl_loss_and_predict(*args, **kwargs):
        losses, proposals = cl_rpn(*args, **kwargs)
        assert len(proposals) == len(handed[0])
        return losses, handed.pop()

    ref.rpn_head.loss_and_predict = ref_loss_and_predict
    cl.rpn_head.loss_and_predict = cl_loss_and_predict


def check_same(model_cfg, with_masks, grad_rtol):
    ref = randomized(model_cfg)
    cl = copy.deepcopy(ref)
    params = list(cl.parameters())
    handles = convert_to_channels_last(cl)
    # converted in place: same parameter objects, 4-D weights now NHWC
    assert [id(p) for p in cl.parameters()] == [id(p) for p in params]
    convs = [m for m in cl.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=CL) for m in convs)
    x = torch.randn(2, 3, 128, 128)
    data = samples(2, 128, with_masks)
    with torch.no_grad():
        feats = cl.extract_feat(x)
        assert all(f.is_contiguous(memory_format=CL) for f in feats)
        a, b = flat(ref._forward(x, data)), flat(cl._forward(x, data))
        assert len(a) == len(b) > 0
        for u, v in zip(a, b):
            assert (u - v).abs().max() <= 1e-4 * max(1.0, u.abs().max().item())
    # training: same losses and gradients (RoIAlign sees NCHW features). BN uses its running
    # statistics here: batch statistics of the 2x2 P7 maps would amplify float rounding.
    for m in (ref, cl):
        m.train()
        for bn in m.modules():
            if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
                bn.eval()
    if hasattr(ref, 'rpn_head'):
        same_proposals(ref, cl)
    torch.manual_seed(1)  # Mask R-CNN samples anchors and proposals at random
    la, _ = ref.parse_losses(ref.loss(x, samples(2, 128, with_masks)))
    torch.manual_seed(1)
    lb, _ = cl.parse_losses(cl.loss(x, samples(2, 128, with_masks)))
    assert abs(la.item() - lb.item()) <= 1e-4 * max(1.0, abs(la.item()))
    la.backward(), lb.backward()
    ga = torch.cat([p.grad.flatten() for p in ref.parameters() if p.grad is not None])
    gb = torch.cat([p.grad.flatten() for p in cl.parameters() if p.grad is not None])
    assert ga.numel() == gb.numel() and (ga - gb).norm() <= grad_rtol * ga.norm()
    for h in handles:
        h.remove()
    return len(handles)


def test_retinanet_channels_last_same_outputs_and_grads():
    assert check_same(Config.fromfile(RETINANET).model, with_masks=False, grad_rtol=1e-4) == 1


def test_mask_rcnn_channels_last_keeps_roi_align_nchw():
    # mmcv's CPU RoIAlign would read NHWC features as NCHW: one hook per RoI extractor
    # (gradients measured 4e-5 apart: the random-init mask logits reach ~500)
    assert check_same(Config.fromfile(MASK_RCNN).model, with_masks=True, grad_rtol=1e-3) == 3


def test_channels_last_hook_cpu_only():
    logger = logging.getLogger('test_channels_last')
    model = revert_sync_batchnorm(MODELS.build(Config.fromfile(RETINANET).model))
    hook = ChannelsLastHook(devices=('cuda',))
    hook.before_train(SimpleNamespace(model=model, logger=logger))
    assert not any(m.weight.is_contiguous(memory_format=CL) and m.weight.shape[-1] > 1
                   for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    hook = ChannelsLastHook()
    hook.before_train(SimpleNamespace(model=model, logger=logger))
    assert all(m.weight.is_contiguous(memory_format=CL)
               for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert len(hook._handles) == 1
    hook.after_run(SimpleNamespace(model=model, logger=logger))
    assert hook._handles == []


STRIDED_1X1 = '''
import torch, torch.nn as nn
from mmdet_spine.models.utils import convert_to_channels_last
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 16, 1, stride=2),
                      nn.Conv2d(16, 32, 1, stride=2))
ref = [m.weight.detach().clone() for m in model]
handles = convert_to_channels_last(model)
seen = []
model[1].register_forward_hook(lambda m, a, out: seen.append(a[0].is_contiguous()))
for _ in range(3):
    model(torch.randn(2, 3, 128, 128)).sum().backward()
print(len(handles), [tuple(m.weight.stride()) for m in model], seen, model[1].weight.grad.norm() > 0)
'''


def test_strided_1x1_convs_with_few_input_channels_stay_nchw():
    """oneDNN's channels-last weight gradient of a 1x1 stride-2 conv with 2-15 input channels
    corrupts the heap on AVX-512 CPUs (measured with torch 2.13: SIGSEGV / "double free or
    corruption" in the first backward): such convs keep NCHW weights and inputs. Run in a
    subprocess, as the bug kills the process."""
    proc = subprocess.run([sys.executable, '-c', STRIDED_1X1], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # 2 hooks: the model's input, conv 1's input; conv 1 (8 -> 16, 1x1, stride 2) keeps NCHW
    # strides and gets NCHW inputs, conv 2 (16 input channels) and conv 0 are converted
    assert proc.stdout.split('\n')[-2] == (
        '2 [(27, 1, 9, 3), (8, 1, 1, 1), (16, 1, 16, 16)] [True, True, True] tensor(True)')
