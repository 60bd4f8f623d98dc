"""Export a single-stage detector's network (before box decoding and NMS) to ONNX.

The export is :mod:`mmdet_spine.deployment.onnx_export` (its docstring says what the graph
holds); this script runs it and exits 1 when ``--verify`` finds a larger difference::

    python tools/deployment/export_onnx.py CONFIG [--checkpoint ckpt.pth] --out model.onnx
        [--input-size 512 | HxW] [--batch 1] [--opset 17] [--fuse-conv-bn] [--verify]
"""
import sys

from mmdet_spine.deployment.onnx_export import main
from mmdet_spine.engine.cli import run_cli

if __name__ == '__main__':
    run_cli(lambda: sys.exit(main()))
