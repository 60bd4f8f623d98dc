"""Registered RoI heads (box and mask heads) of mmdet-spine."""
from .norm_act_bbox_head import NormActConvFCBBoxHead  # noqa: F401
from .norm_act_mask_head import NormActFCNMaskHead  # noqa: F401
from .float32_roi_extractor import Float32SingleRoIExtractor  # noqa: F401
