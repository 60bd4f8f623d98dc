"""Measurement tools behind ``tools/analysis_tools/`` (the scripts only parse and call).

- :mod:`mmdet_spine.analysis.benchmark`: parameters, FLOPs, latency, memory and the training
  step of configs, optionally alternating with the reference implementations (TF Model Garden
  SpineNet and RetinaNet, effdet) in the same mode;
- ``references/``: the reference workers, scripts that run in the references' own
  interpreters (``.venv-tf``, effdet's) and answer the benchmark over a JSON-lines pipe
  (``latency_worker.py``). They import nothing of this package.

Nothing here is imported by ``import mmdet_spine``.
"""
