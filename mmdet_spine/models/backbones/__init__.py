"""Registered backbones of mmdet-spine."""
