"""Building blocks shared by the backbones and necks (one implementation each)."""
from .fusion import FUSION_METHODS, FeatureFusion, check_fusion_method
from .tf_padding import TFSamePad2d, tf_same_padding

__all__ = ['FUSION_METHODS', 'FeatureFusion', 'check_fusion_method', 'TFSamePad2d',
           'tf_same_padding']
