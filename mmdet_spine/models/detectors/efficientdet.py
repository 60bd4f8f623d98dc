"""The EfficientDet detector: a RetinaNet-style single-stage detector with build-time checks.

Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object Detection", CVPR 2020,
https://arxiv.org/abs/1911.09070.
"""
from mmdet.models.detectors import RetinaNet
from mmdet.registry import MODELS

from mmdet_spine.errors import ConfigError


@MODELS.register_module()
class EfficientDet(RetinaNet):
    """EfficientDet: EfficientNet backbone + BiFPN + shared separable class/box nets.

    Tan, Pang, Le, "EfficientDet: Scalable and Efficient Object Detection", CVPR 2020,
    https://arxiv.org/abs/1911.09070. Training and inference are mmdet's ``RetinaNet``; this
    class only adds checks, at build time, that the pieces fit together: the neck's
    ``in_channels`` equal the backbone's ``out_channels`` (when the backbone declares them) and
    the head serves as many levels as the neck gives, and its anchor generator has one stride
    per level. The scaling table's configs (``efficientdet_model_cfg``) also check the input
    size (a multiple of ``size_divisor``) and the numeric fields before anything is built.

    Args:
        backbone (dict): Backbone config.
        neck (dict): Neck config (``BiFPN``).
        bbox_head (dict): Head config (``EfficientDetSepBNHead``).
        train_cfg (dict, optional): Assigner / sampler config.
        test_cfg (dict, optional): Post-processing config.
        data_preprocessor (dict, optional): ``DetDataPreprocessor`` config.
        init_cfg (dict | list[dict], optional): Initialisation config.
    """

    def __init__(self, backbone, neck, bbox_head, train_cfg=None, test_cfg=None,
                 data_preprocessor=None, init_cfg=None):
        super().__init__(backbone, neck, bbox_head, train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        given = getattr(self.backbone, 'out_channels', None)
        expected = getattr(self.neck, 'in_channels', None)
        if given is not None and expected is not None and list(given) != list(expected):
            raise ConfigError(f'EfficientDet: neck.in_channels={list(expected)} does not match '
                              f'backbone.out_channels={list(given)} '
                              f'({type(self.backbone).__name__})')
        outs = getattr(self.neck, 'num_outs', None)
        levels = getattr(self.bbox_head, 'num_levels', None)
        if outs is not None and levels is not None and outs != levels:
            raise ConfigError(f'EfficientDet: bbox_head.num_levels={levels} but the neck gives '
                              f'{outs} levels (neck.num_outs)')
        priors = getattr(self.bbox_head, 'prior_generator', None)
        strides = getattr(priors, 'strides', None)
        if outs is not None and strides is not None and len(strides) != outs:
            raise ConfigError(f'EfficientDet: bbox_head.anchor_generator.strides has '
                              f'{len(strides)} levels but the neck gives {outs} (neck.num_outs)')
