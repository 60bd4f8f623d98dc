"""SpineNet image classification on mmengine: backbone, pyramid-averaging neck, linear head.

Du et al., "SpineNet: Learning Scale-Permuted Backbone for Recognition and Localization",
CVPR 2020, https://arxiv.org/abs/1912.05027, Sec. 4.3 and 6 (ImageNet, iNaturalist-2017).
Needs only mmengine and this package (mmpretrain users use our backbones and neck with
mmpretrain's ``ImageClassifier`` instead; see :mod:`mmdet_spine.classification.mmpretrain_models`).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from mmdet.registry import MODELS
from mmdet_spine.errors import BadDataError, ConfigError


def gt_labels(data_samples: Sequence[BaseDataElement]) -> torch.Tensor:
    """The ``gt_label`` of every sample as one ``(N,)`` long tensor."""
    labels = []
    for i, s in enumerate(data_samples):
        if 'gt_label' not in s:
            raise BadDataError(f'data sample {i} has no gt_label (pack the data with '
                               'PackClassificationInputs)')
        labels.append(torch.as_tensor(s.gt_label).reshape(-1)[:1])
    return torch.cat(labels).long()


@MODELS.register_module()
class SpineClassifier(BaseModel):
    """An image classifier: backbone -> :class:`PyramidAveragePooling` -> linear head.

    From Du et al., CVPR 2020 (https://arxiv.org/abs/1912.05027): SpineNet's P3-P7 averaged at
    P3's size, pooled, one linear layer. Any of our backbones works:

    - ``SpineNet`` / ``SpineNetMobile``: P3..P7 all have the endpoint width, so the neck
      averages all five levels (the paper's model).
    - ``SpineResNet``: its ``out_indices`` select stage outputs of different widths
      (256..2048 for ResNet-50); give it ``out_indices=(3,)`` and the neck reduces to global
      average pooling of the last stage, which is the ResNet classifier (He et al., 2016).
      With several stages use the neck's ``aggregation='top'`` (the coarsest only); averaging
      stages of different widths is refused at build time.

    ``forward`` modes (mmengine's): ``'tensor'`` returns the logits ``(N, num_classes)``;
    ``'loss'`` a dict with ``loss_cls`` (and the logged ``acc_top<k>``); ``'predict'`` the
    data samples with ``pred_score`` (softmax) and ``pred_label`` added.

    Args:
        backbone (dict): Backbone config (``SpineNet``, ``SpineNetMobile``, ``SpineResNet``
            or any backbone returning a tuple of maps and listing ``out_channels``).
        head (dict): Head config, e.g. ``dict(type='LinearClassificationHead',
            num_classes=1000, label_smoothing=0.1)``; its ``in_channels`` is taken from the
            neck when omitted.
        neck (dict): Default: ``dict(type='PyramidAveragePooling')``.
        data_preprocessor (dict, optional): E.g. mmengine's ``ImgDataPreprocessor`` with
            ``mean``, ``std`` and ``bgr_to_rgb``. Default: None (inputs as given).
        init_cfg (dict, optional): Initialisation config. Default: None.

    Example:
        >>> model = SpineClassifier(
        ...     backbone=dict(type='SpineNet', arch='49S'),
        ...     head=dict(type='LinearClassificationHead', num_classes=10)).eval()
        >>> tuple(model(torch.rand(2, 3, 64, 64)).shape)
        (2, 10)
    """

    def __init__(self, backbone: Dict, head: Dict,
                 neck: Dict = dict(type='PyramidAveragePooling'),
                 data_preprocessor: Optional[Dict] = None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        for field, cfg in (('backbone', backbone), ('neck', neck), ('head', head)):
            if not isinstance(cfg, dict) or 'type' not in cfg:
                raise ConfigError(f'SpineClassifier: {field}={cfg!r} must be a config dict '
                                  "with a 'type'")
        if backbone.get('num_classes') is not None:
            raise ConfigError(
                f"SpineClassifier: backbone.num_classes={backbone['num_classes']!r} turns "
                "SpineResNet into a classifier of its own; leave it None (the head classifies)")
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        widths = getattr(self.backbone, 'out_channels', None)
        width = None
        if widths is not None and hasattr(self.neck, 'out_channels'):
            width = self.neck.out_channels(widths)
        head = dict(head)
        if head.get('in_channels') is None:
            if width is None:
                raise ConfigError('SpineClassifier: head.in_channels is needed: the backbone '
                                  'does not list its out_channels')
            head['in_channels'] = width
        elif width is not None and head['in_channels'] != width:
            raise ConfigError(f"SpineClassifier: head.in_channels={head['in_channels']} but "
                              f'the neck outputs {width} channels; set it to {width} or omit it')
        self.head = MODELS.build(head)

    def extract_feat(self, inputs: torch.Tensor):
        """The pooled features: a one-element tuple ``((N, C),)``."""
        return self.neck(self.backbone(inputs))

    def _forward(self, inputs: torch.Tensor, data_samples=None) -> torch.Tensor:
        """Logits ``(N, num_classes)`` (the ``'tensor'`` mode, as mmdet's detectors)."""
        return self.head(self.extract_feat(inputs))

    def forward(self, inputs: torch.Tensor,
                data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor') -> Union[torch.Tensor, Dict, List[BaseDataElement]]:
        if mode == 'tensor':
            return self._forward(inputs)
        if mode == 'loss':
            if not data_samples:
                raise BadDataError("SpineClassifier: mode='loss' needs data_samples with "
                                   'gt_label')
            return self.head.loss(self.extract_feat(inputs), gt_labels(data_samples))
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ConfigError(f"SpineClassifier: mode={mode!r} is not a forward mode; valid "
                          'choices: tensor, loss, predict')

    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[BaseDataElement]] = None) -> List[BaseDataElement]:
        """Data samples with ``pred_score`` ``(num_classes,)`` and ``pred_label`` added."""
        scores = self._forward(inputs).softmax(dim=1)
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(len(scores))]
        for sample, score in zip(data_samples, scores):
            sample.set_field(score.detach(), 'pred_score')
            sample.set_field(score.argmax().detach(), 'pred_label')
        return data_samples
