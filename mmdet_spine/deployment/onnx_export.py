"""Export a single-stage detector's network (before box decoding and NMS) to ONNX.

The graph takes one normalised NCHW float32 image batch of a fixed size (static shapes) and
returns the head's raw outputs, class scores then box deltas, one tensor per pyramid level:
``cls_score_p3 .. cls_score_p7, bbox_pred_p3 .. bbox_pred_p7`` (shapes ``(N, A * C, H_l, W_l)``
and ``(N, A * 4, H_l, W_l)``). Anchors, decoding and NMS stay with the caller (mmdet's
``bbox_head.predict_by_feat`` does them from these tensors).

Uses PyTorch's TorchScript-based exporter (``dynamo=False``; no onnxscript needed), opset 17
by default. ``--verify`` runs the file with onnxruntime (CPU) on a random input and compares
it with PyTorch. Needs the optional deployment packages ``onnx`` and ``onnxruntime``
(``requirements/tests.txt`` pins them).

``tools/deployment/export_onnx.py`` parses the command line and calls :func:`main`::

    python tools/deployment/export_onnx.py CONFIG [--checkpoint ckpt.pth] --out model.onnx
        [--input-size 512 | HxW] [--batch 1] [--opset 17] [--fuse-conv-bn] [--verify]
"""
import argparse
import copy
import os
import os.path as osp
import warnings

import torch
import torch.nn as nn

from ..engine.cli import load_config, parse_size
from ..engine.inference_model import build_inference_model
from ..errors import ConfigError, UserError

MIN_OPSET = 17


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('--checkpoint', help='weights (default: random init)')
    p.add_argument('--out', required=True, help='.onnx file to write')
    p.add_argument('--input-size', type=parse_size,
                   help="N or HxW; default the backbone's fixed input_size, else 640")
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--opset', type=int, default=MIN_OPSET)
    p.add_argument('--fuse-conv-bn', action='store_true', help='fold BN into convs first')
    p.add_argument('--verify', action='store_true',
                   help='compare onnxruntime with PyTorch on a random input')
    p.add_argument('--atol', type=float, default=1e-4, help='tolerance of --verify')
    return p


class HeadOutputs(nn.Module):
    """A single-stage detector as ``x -> (*cls_scores, *bbox_preds)`` (flat tuple)."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor):
        cls_scores, bbox_preds = self.detector.bbox_head(self.detector.extract_feat(x))
        return (*cls_scores, *bbox_preds)


def build_detector(config: str, checkpoint=None) -> nn.Module:
    """The config's detector (SyncBN reverted to BN), initialised or loaded, in eval mode."""
    from mmengine.registry import init_default_scope

    from .. import models  # noqa: F401  (registries)
    cfg = load_config(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = build_inference_model(cfg, checkpoint)
    if not hasattr(model, 'bbox_head') or hasattr(model, 'roi_head'):
        raise ConfigError(f'config={config!r} builds a {type(model).__name__}; export_onnx '
                          f'supports single-stage detectors (with bbox_head, no roi_head)')
    return model, cfg


def export(config: str, out: str, input_size=None, checkpoint=None, batch: int = 1,
           opset: int = MIN_OPSET, fuse_conv_bn: bool = False):
    """Write the ONNX file; returns (wrapped PyTorch module, example input, output names)."""
    if opset < MIN_OPSET:
        raise UserError(f'--opset={opset}: use {MIN_OPSET} or newer')
    model, cfg = build_detector(config, checkpoint)
    size = input_size or cfg.model.get('backbone', {}).get('input_size') or (640, 640)
    size = (size, size) if isinstance(size, int) else tuple(size)
    x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0))
    net = HeadOutputs(model).eval()
    if fuse_conv_bn:
        from ..models.utils import fuse_conv_bn_for_inference
        net = fuse_conv_bn_for_inference(copy.deepcopy(net), example=lambda m: m(x))
    with torch.no_grad():
        n_levels = len(net(x)) // 2
    first = getattr(model.bbox_head, 'prior_generator', None)
    levels = ([int(s[0]).bit_length() - 1 for s in first.strides]  # stride 2**l -> level l
              if first is not None else list(range(3, 3 + n_levels)))
    names = [f'cls_score_p{l}' for l in levels] + [f'bbox_pred_p{l}' for l in levels]
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)  # shape checks -> constants
        torch.onnx.export(net, (x,), out, input_names=['image'], output_names=names,
                          opset_version=opset, dynamo=False, do_constant_folding=True)
    return net, x, names


def verify(net: nn.Module, x: torch.Tensor, path: str, names) -> float:
    """Largest |onnxruntime - PyTorch| over all outputs for input ``x``."""
    import onnx
    import onnxruntime as ort
    onnx.checker.check_model(onnx.load(path))
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    got = session.run(names, {'image': x.numpy()})
    with torch.no_grad():
        want = net(x)
    return max(float((torch.from_numpy(g) - w).abs().max()) for g, w in zip(got, want))


def main(argv=None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), export, optionally verify; 1 when the
    verification exceeds the tolerance, else 0."""
    args = build_parser().parse_args(argv)
    net, x, names = export(args.config, args.out, args.input_size, args.checkpoint,
                           args.batch, args.opset, args.fuse_conv_bn)
    print(f'wrote {args.out}: input image {tuple(x.shape)}, outputs {", ".join(names)}, '
          f'opset {args.opset}')
    if args.verify:
        diff = verify(net, x, args.out, names)
        print(f'onnxruntime vs PyTorch: max abs difference {diff:.3g} (tolerance {args.atol})')
        if diff > args.atol:
            return 1
    return 0

