"""Deployment of the models: :mod:`~mmdet_spine.deployment.onnx_export` writes a single-stage
detector's network (head outputs before decoding and NMS) as ONNX, checked against PyTorch
with onnxruntime. Behind ``tools/deployment/``; nothing here is imported by
``import mmdet_spine``."""
