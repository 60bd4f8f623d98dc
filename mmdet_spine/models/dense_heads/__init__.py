"""Registered dense_heads of mmdet-spine."""
