"""Registered dense_heads of mmdet-spine."""
from .efficientdet_head import EfficientDetAnchorGenerator, EfficientDetSepBNHead  # noqa: F401
from .retina_sepbn_act_head import RetinaSepBNActHead  # noqa: F401
from .rpn_sepbn_head import RPNSepBNHead  # noqa: F401
