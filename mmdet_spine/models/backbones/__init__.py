"""Registered backbones of mmdet-spine."""
from .spinenet import SpineNet  # noqa: F401
from .spinenet_mobile import SpineNetMobile  # noqa: F401
from .spine_resnet import SpineResNet  # noqa: F401
from .tf_efficientnet import TFEfficientNet  # noqa: F401
