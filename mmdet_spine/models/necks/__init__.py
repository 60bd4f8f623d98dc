"""Registered necks of mmdet-spine."""
from .bifpn import BiFPN  # noqa: F401
