"""One training step of each config family under mmengine's ``AmpOptimWrapper`` with
``dtype='bfloat16'`` (what ``tools/train.py --amp`` builds on a GPU, with bf16 as on recent
GPUs) and under our ``CPUAmpOptimWrapper`` (what it builds on the CPU).

mmengine's ``AmpOptimWrapper`` refuses to be built without an accelerator; its autocast and
(disabled-on-CPU) grad scaler otherwise run on the CPU, so the test replaces only that device
check, in this test, to run the same code path here: convs run in bfloat16 (checked with a
forward hook), the losses are finite and the weights move.
"""
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope

from helpers import REPO
from test_configs import _sample

FAMILIES = {
    'spinenet_retinanet': 'configs/spinenet/retinanet_spinenet-49s-tiny_8xb8-12e_shapes.py',
    'spinenet_mask_rcnn': 'configs/spinenet/mask-rcnn_spinenet-49s-tiny_8xb8-8e_shapes.py',
    'efficientdet': 'configs/efficientdet/efficientdet_d0-shapes_bifpn_8xb8-5e_shapes.py',
    'spineresnet': 'configs/spineresnet/retinanet_spineresnet-50_fpn_32xb8-lsj-50e_coco-640.py',
}
SIZE = 128


@pytest.mark.parametrize('wrapper_type', ['AmpOptimWrapper', 'CPUAmpOptimWrapper'])
@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_bf16_amp_step_is_finite(family, wrapper_type, monkeypatch):
    from mmdet.registry import MODELS, OPTIM_WRAPPERS
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    if wrapper_type == 'AmpOptimWrapper':
        monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    torch.set_num_threads(1)
    cfg = Config.fromfile(f'{REPO}/{FAMILIES[family]}')
    neck = cfg.model.get('neck')
    if neck is not None and neck.get('input_size') is not None:
        neck.input_size = SIZE
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.train()
    wrapper = OPTIM_WRAPPERS.build(dict(type=wrapper_type, dtype='bfloat16',
                                        optimizer=torch.optim.SGD(model.parameters(), lr=0.01)))
    conv_dtypes = set()
    # the last backbone conv: never frozen (SpineResNet's configs freeze the stem)
    conv = [m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    conv.register_forward_hook(lambda m, i, o: conv_dtypes.add(o.dtype))
    with_mask = 'mask_head' in cfg.model.get('roi_head', {})
    g = torch.Generator().manual_seed(0)
    data = dict(
        inputs=[torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8, generator=g)
                for _ in range(2)],
        data_samples=[_sample(SIZE, [[0.1, 0.15, 0.55, 0.7], [0.4, 0.3, 0.95, 0.9]], [0, 1],
                              with_mask),
                      _sample(SIZE, [[0.05, 0.5, 0.35, 0.95], [0.3, 0.05, 0.9, 0.45]], [1, 2],
                              with_mask)])
    before = conv.weight.detach().clone()
    log_vars = model.train_step(data, wrapper)
    assert conv_dtypes == {torch.bfloat16}
    assert log_vars and all(math.isfinite(float(v)) for v in log_vars.values()), log_vars
    assert conv.weight.dtype == torch.float32  # master weights stay fp32
    assert not torch.equal(conv.weight.detach(), before)


def test_float32_roi_extractor_equals_mmdet_and_pools_bf16_features():
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    from mmdet_spine.models.roi_heads import Float32SingleRoIExtractor
    kwargs = dict(roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                  out_channels=4, featmap_strides=[8, 16])
    ours, theirs = Float32SingleRoIExtractor(**kwargs), SingleRoIExtractor(**kwargs)
    g = torch.Generator().manual_seed(0)
    feats = (torch.randn(2, 4, 32, 32, generator=g), torch.randn(2, 4, 16, 16, generator=g))
    rois = torch.tensor([[0., 4., 4., 60., 80.], [1., 10., 20., 250., 240.],
                         [1., 0., 0., 30., 30.]])
    expected = theirs(feats, rois)
    assert torch.equal(ours(feats, rois), expected)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = ours(tuple(f.bfloat16() for f in feats), rois)
    assert out.dtype == torch.float32 and out.shape == (3, 4, 7, 7)
    assert (out - expected).abs().max() < 0.05  # only the bf16 rounding of the inputs


def test_cpu_amp_wrapper_refuses_float16_and_reads_cpu_flags(tmp_path):
    from mmdet_spine.engine import CPUAmpOptimWrapper, cpu_has_native_bf16
    from mmdet_spine.errors import ConfigError
    opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    with pytest.raises(ConfigError, match="dtype='float16'; valid choices: 'bfloat16'"):
        CPUAmpOptimWrapper(dtype='float16', optimizer=opt)
    for flags, native in (('fpu avx2 fma', False), ('avx2 avx512f avx512_bf16', True),
                          ('avx2 amx_tile amx_bf16', True)):
        info = tmp_path / 'cpuinfo'
        info.write_text(f'processor\t: 0\nflags\t\t: {flags}\n')
        assert cpu_has_native_bf16(str(info)) is native
