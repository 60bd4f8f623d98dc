"""Registered dense_heads of mmdet-spine."""
from .efficientdet_head import EfficientDetAnchorGenerator, EfficientDetSepBNHead  # noqa: F401
