"""mmdet's single-level RoI extractor, pooling in float32 under mixed precision.

Mask R-CNN (He et al., ICCV 2017, https://arxiv.org/abs/1703.06870) pools each RoI from one
pyramid level with RoIAlign. mmcv 2.1's RoIAlign kernels have no bfloat16 implementation
(``"ROIAlign_forward" not implemented for 'BFloat16'``) and its CPU kernel no float16 either,
so a Mask R-CNN trained with ``AmpOptimWrapper(dtype='bfloat16')`` (or fp16 on a CPU) stops at
the first RoI. :class:`Float32SingleRoIExtractor` is mmdet's ``SingleRoIExtractor`` with the
pooling run outside autocast on float32 features; the pooled features are float32 and the
box / mask heads after it autocast again as usual. Outside mixed precision it computes exactly
what ``SingleRoIExtractor`` does.
"""
from typing import Optional, Tuple

import torch
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS
from torch import Tensor

__all__ = ['Float32SingleRoIExtractor']


@MODELS.register_module()
class Float32SingleRoIExtractor(SingleRoIExtractor):
    """``SingleRoIExtractor`` that pools in float32 (for bfloat16 / CPU fp16 training).

    Args:
        Same as :class:`mmdet.models.roi_heads.roi_extractors.SingleRoIExtractor`
        (``roi_layer``, ``out_channels``, ``featmap_strides``, ``finest_scale``,
        ``init_cfg``).

    Example:
        >>> import torch
        >>> ext = Float32SingleRoIExtractor(
        ...     roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
        ...     out_channels=8, featmap_strides=[8])
        >>> feats = (torch.rand(1, 8, 16, 16).bfloat16(),)
        >>> rois = torch.tensor([[0., 8., 8., 64., 64.]])
        >>> ext(feats, rois).dtype
        torch.float32
    """

    def forward(self, feats: Tuple[Tensor], rois: Tensor,
                roi_scale_factor: Optional[float] = None) -> Tensor:
        device_type = feats[0].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return super().forward(tuple(f.float() for f in feats), rois.float(),
                                   roi_scale_factor)
