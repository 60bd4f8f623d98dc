"""The SpineNet classification neck: the feature pyramid averaged at its finest level, pooled.

Du et al., "SpineNet: Learning Scale-Permuted Backbone for Recognition and Localization",
CVPR 2020, https://arxiv.org/abs/1912.05027, Sec. 4.3: for ImageNet and iNaturalist the
P3-P7 endpoints are upsampled by nearest neighbour to P3's size and averaged; global average
pooling of that map gives the feature vector (the endpoint width, 256 for SpineNet-49) that a
linear classifier reads.

As in the official implementation (tensorflow/tpu ``ClassificationHead`` with
``aggregation='all'``) the upsampling is top-down: the running map starts at the coarsest
level and at each finer level is resized nearest-neighbour to that level's size and added,
then the sum is divided by the number of levels. When every level is exactly twice the next
(inputs divisible by 2^max_level) this equals resizing every level to P3 directly; for other
inputs (224 px: P5 7x7, P6 4x4) it reproduces TF's indices, since PyTorch's ``'nearest'`` and
TF's ``resize_nearest_neighbor`` both read source index ``floor(dst * in / out)``.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmdet.registry import MODELS
from mmdet_spine.errors import ConfigError

#: Ways to combine the levels: the paper's average of all levels, or only the coarsest one
#: (a ResNet classifier reads its last stage this way; TF's ``aggregation='top'``).
AGGREGATIONS = ('all', 'top')


@MODELS.register_module()
class PyramidAveragePooling(BaseModule):
    """Average the pyramid levels at the finest level's size, then global average pooling.

    From Du et al., CVPR 2020 (https://arxiv.org/abs/1912.05027), Sec. 4.3. No parameters.
    Inputs are ordered finest level first (as SpineNet's P3..P7 and SpineResNet's stage
    outputs are); with ``aggregation='all'`` they must share one channel width.

    The output is a one-element tuple ``((N, C),)``, the form mmpretrain's necks return, so
    the same neck serves :class:`~mmdet_spine.classification.SpineClassifier` and
    mmpretrain's ``ImageClassifier`` + ``LinearClsHead``.

    Args:
        aggregation (str): 'all' (the paper: every level, upsampled top-down by nearest
            neighbour and averaged) or 'top' (only the coarsest level). Default: 'all'.
        init_cfg (dict, optional): Unused (no parameters). Default: None.

    Example:
        >>> neck = PyramidAveragePooling()
        >>> feats = [torch.rand(2, 8, 16 // 2**i, 16 // 2**i) for i in range(5)]
        >>> [tuple(o.shape) for o in neck(feats)]
        [(2, 8)]
    """

    def __init__(self, aggregation: str = 'all', init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if aggregation not in AGGREGATIONS:
            raise ConfigError(f'PyramidAveragePooling: aggregation={aggregation!r} is not an '
                              f"aggregation; valid choices: {', '.join(AGGREGATIONS)}")
        self.aggregation = aggregation

    def out_channels(self, in_channels: Sequence[int]) -> int:
        """Width of the pooled vector for inputs of widths ``in_channels`` (finest first).

        Raises:
            ConfigError: when ``aggregation='all'`` and the widths differ.
        """
        widths = [int(c) for c in in_channels]
        if not widths:
            raise ConfigError('PyramidAveragePooling: the backbone reports no output widths')
        if self.aggregation == 'all' and len(set(widths)) > 1:
            raise ConfigError(
                f"PyramidAveragePooling: aggregation='all' averages the levels, which needs "
                f'one width, but the backbone outputs widths {widths}; give the backbone a '
                f"single output (e.g. SpineResNet out_indices=(3,)) or use aggregation='top'")
        return widths[-1]

    def aggregate(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """The averaged map at the finest level's size (before pooling), ``(N, C, H3, W3)``."""
        if self.aggregation == 'top':
            return feats[-1]
        x = feats[-1]
        for f in reversed(feats[:-1]):
            if f.shape[1] != x.shape[1]:
                raise ConfigError(
                    f"PyramidAveragePooling: aggregation='all' needs one width, got "
                    f'{[int(t.shape[1]) for t in feats]} channels')
            x = F.interpolate(x, size=f.shape[-2:], mode='nearest') + f
        return x / len(feats)

    def forward(self, feats) -> Tuple[torch.Tensor]:
        if isinstance(feats, torch.Tensor):
            feats = (feats,)
        feats: List[torch.Tensor] = list(feats)
        return (self.aggregate(feats).mean(dim=(2, 3)),)
