"""Building blocks shared by the backbones and necks (one implementation each)."""
from .swish import Swish
from .fusion import FUSION_METHODS, FeatureFusion, check_fusion_method
from .tf_padding import TFSamePad2d, tf_same_padding
from .residual_blocks import (RESIDUAL_BLOCKS, BottleneckBlock, ResidualBlock, build_act,
                              get_residual_block)
from .cross_scale_resample import (PADDING_MODES, CrossScaleResample,
                                   DepthwiseCrossScaleResample, strided_max_pool)
from .tf_padding import Conv2dTFSame, MaxPool2dTFSame
from .separable_conv import SeparableConvModule
from .tf_init import TF_INITS, tf_conv_init

__all__ = ['FUSION_METHODS', 'FeatureFusion', 'check_fusion_method', 'TFSamePad2d',
           'tf_same_padding']
__all__ += ['Swish']
__all__ += ['Conv2dTFSame', 'MaxPool2dTFSame', 'SeparableConvModule', 'TF_INITS', 'tf_conv_init']
__all__ += ['RESIDUAL_BLOCKS', 'BottleneckBlock', 'ResidualBlock', 'build_act',
            'get_residual_block', 'PADDING_MODES', 'CrossScaleResample',
            'DepthwiseCrossScaleResample', 'strided_max_pool']
