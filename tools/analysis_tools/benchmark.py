"""Benchmark detectors: parameters, FLOPs, latency, throughput, peak memory, training step,
optionally against the reference implementations in the same mode (``--compare``).

The tool is :mod:`mmdet_spine.analysis.benchmark` (its docstring says what is timed and the
JSON it writes); this script parses the command line and runs it::

    python tools/analysis_tools/benchmark.py CONFIG [CONFIG ...] [--compare] [--train] ...
"""
from mmdet_spine.analysis.benchmark import main
from mmdet_spine.engine.cli import run_cli

if __name__ == '__main__':
    run_cli(main)
