"""tools/deployment/export_onnx.py: static-shape ONNX of the network outputs before NMS,
matched by onnxruntime (CPU) within 1e-4."""
import os.path as osp

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from helpers import REPO, run_tool

TOOL = osp.join(REPO, 'tools', 'deployment', 'export_onnx.py')
CONFIGS = {
    'efficientdet-d0': 'configs/efficientdet/efficientdet_d0_bifpn_8xb16-300e_coco.py',
    'spinenet-49s': 'configs/spinenet/retinanet_spinenet-49s_32xb8-lsj-500e_coco-640.py',
}


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_onnx_round_trip(name, tmp_path):
    from mmdet_spine.deployment import onnx_export as tool
    out = str(tmp_path / f'{name}.onnx')
    net, x, names = tool.export(osp.join(REPO, CONFIGS[name]), out, input_size=(256, 256))
    model = onnx.load(out)
    onnx.checker.check_model(model)
    assert max(o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')) >= 17
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 256, 256]  # static
    assert [o.name for o in model.graph.output] == names
    assert names == [f'cls_score_p{i}' for i in range(3, 8)] + [
        f'bbox_pred_p{i}' for i in range(3, 8)]
    assert not any(n.op_type in ('NonMaxSuppression', 'TopK') for n in model.graph.node)
    # a fresh input, not the one traced: onnxruntime must match PyTorch within 1e-4
    x2 = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(5))
    got = ort.InferenceSession(out, providers=['CPUExecutionProvider']).run(
        names, {'image': x2.numpy()})
    with torch.no_grad():
        want = net(x2)
    assert [tuple(g.shape) for g in got] == [tuple(w.shape) for w in want]
    assert want[0].shape[-1] == 32 and want[4].shape[-1] == 2  # P3 .. P7 of 256 px
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy(), atol=1e-4, rtol=0)


def test_two_stage_refused(tmp_path):
    proc = run_tool([TOOL, 'configs/spinenet/mask-rcnn_spinenet-49s-tiny_8xb8-8e_shapes.py',
                     '--out', str(tmp_path / 'x.onnx')], check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr
    assert lines[-1].startswith('error: ') and 'single-stage detectors' in lines[-1], lines
