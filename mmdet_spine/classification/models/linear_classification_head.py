"""A linear classifier on a pooled feature vector, trained with (label-smoothed) cross entropy.

The prediction layer of the SpineNet classification models (Du et al., CVPR 2020,
https://arxiv.org/abs/1912.05027, Sec. 4.3): a fully connected layer on the pooled feature
vector, softmax cross entropy with label smoothing 0.1 in the improved recipe (Szegedy et al.,
"Rethinking the Inception Architecture for Computer Vision", CVPR 2016,
https://arxiv.org/abs/1512.00567). Weights are initialised from N(0, 0.01^2), biases to 0, as
tensorflow/tpu's ``ClassificationHead``; optional dropout before the layer as there.
"""
from typing import Dict, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmdet.registry import MODELS
from mmdet_spine.errors import BadDataError, ConfigError


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Per sample: whether ``labels`` is among the ``k`` highest ``logits`` (bool, ``(N,)``)."""
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1)


@MODELS.register_module()
class LinearClassificationHead(BaseModule):
    """Linear classification head with label-smoothed softmax cross entropy.

    Reads the last element of the neck's tuple (``(N, in_channels)``). The smoothed target is
    ``(1 - label_smoothing) * one_hot + label_smoothing / num_classes`` (TF's
    ``softmax_cross_entropy(label_smoothing=...)``, ``torch``'s ``cross_entropy``).

    Args:
        num_classes (int): Number of classes (>= 2).
        in_channels (int): Width of the pooled features. :class:`SpineClassifier` fills it
            in from its neck when None. Default: None.
        label_smoothing (float): In [0, 1). The improved SpineNet recipe uses 0.1.
            Default: 0.0.
        dropout_rate (float): Dropout before the linear layer while training, in [0, 1).
            Default: 0.0.
        loss_weight (float): Multiplier of the loss. Default: 1.0.
        topk (Sequence[int]): Training accuracies logged with the loss
            (``acc_top<k>``; not part of the loss). Default: (1,).
        init_cfg (dict | list[dict]): Default: N(0, 0.01) for ``fc``, bias 0.

    Example:
        >>> head = LinearClassificationHead(num_classes=10, in_channels=256)
        >>> tuple(head((torch.rand(2, 256),)).shape)
        (2, 10)
    """

    def __init__(self, num_classes: int, in_channels: int = None,
                 label_smoothing: float = 0.0, dropout_rate: float = 0.0,
                 loss_weight: float = 1.0, topk: Sequence[int] = (1,),
                 init_cfg=dict(type='Normal', layer='Linear', std=0.01, bias=0.)):
        super().__init__(init_cfg=init_cfg)
        name = 'LinearClassificationHead'
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ConfigError(f'{name}: num_classes={num_classes!r} must be an integer >= 2')
        if (in_channels is None or isinstance(in_channels, bool)
                or not isinstance(in_channels, int) or in_channels < 1):
            raise ConfigError(f'{name}: in_channels={in_channels!r} must be an integer >= 1')
        for field, value in (('label_smoothing', label_smoothing),
                             ('dropout_rate', dropout_rate)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0 <= value < 1:
                raise ConfigError(f'{name}: {field}={value!r} must be in [0, 1)')
        if not all(isinstance(k, int) and k >= 1 for k in topk):
            raise ConfigError(f'{name}: topk={tuple(topk)!r} must be integers >= 1')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.label_smoothing = float(label_smoothing)
        self.loss_weight = loss_weight
        self.topk = tuple(topk)
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, feats: Union[Tuple[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        x = feats[-1] if isinstance(feats, (tuple, list)) else feats
        return self.fc(self.dropout(x))

    def loss(self, feats, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``loss_cls`` and, without gradient, the training accuracies ``acc_top<k>``."""
        logits = self(feats)
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise BadDataError(f'LinearClassificationHead: labels must be in '
                              f'0..{self.num_classes - 1} (num_classes={self.num_classes}), '
                              f'got {int(labels.min())}..{int(labels.max())}')
        losses = dict(loss_cls=self.loss_weight * F.cross_entropy(
            logits, labels, label_smoothing=self.label_smoothing))
        with torch.no_grad():
            for k in self.topk:
                losses[f'acc_top{k}'] = topk_correct(logits, labels, k).float().mean()
        return losses
