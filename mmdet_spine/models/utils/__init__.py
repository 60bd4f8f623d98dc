"""Model utilities that act on built models (deployment-time transformations)."""
from .conv_bn_fusion import count_norm_layers, find_conv_bn_pairs, fuse_conv_bn_for_inference

__all__ = ['count_norm_layers', 'find_conv_bn_pairs', 'fuse_conv_bn_for_inference']
