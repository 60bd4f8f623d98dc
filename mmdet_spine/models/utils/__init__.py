"""Model utilities that act on built models (deployment-time transformations)."""
from .channels_last import convert_to_channels_last
from .conv_bn_fusion import count_norm_layers, find_conv_bn_pairs, fuse_conv_bn_for_inference

__all__ = ['convert_to_channels_last', 'count_norm_layers', 'find_conv_bn_pairs', 'fuse_conv_bn_for_inference']
