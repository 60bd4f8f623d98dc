"""Draw a scale-permuted backbone's block graph (like Fig. 1 of the SpineNet paper) as a PNG.

The drawing is :mod:`mmdet_spine.analysis.block_graph`; this script runs it::

    python tools/analysis_tools/draw_spec.py 49 --out spinenet49.png
    python tools/analysis_tools/draw_spec.py mobile-49XS --out mobile49xs.png
    python tools/analysis_tools/draw_spec.py CONFIG --out spinenet96.png
"""
from mmdet_spine.analysis.block_graph import main
from mmdet_spine.engine.cli import run_cli

if __name__ == '__main__':
    run_cli(main)
