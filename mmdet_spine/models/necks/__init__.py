"""Registered necks of mmdet-spine."""
