"""FCN mask head with a norm after the up-sampling deconv and a configurable activation."""
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class NormActFCNMaskHead(FCNMaskHead):
    """mmdet's :class:`~mmdet.models.roi_heads.mask_heads.FCNMaskHead` with ``act_cfg`` and a
    norm after the deconv.

    The SpineNet Mask R-CNN mask head (Du et al., CVPR 2020, https://arxiv.org/abs/1912.05027;
    TF Model Garden ``official/vision/modeling/heads/instance_heads.py`` ``MaskHead``):
    4 3x3 convs and a 2x deconv, each followed by a norm (SyncBN) and the activation, then
    the 1x1 mask logits. mmdet's head normalises the convs only (``norm_cfg``) and uses ReLU.

    Args:
        act_cfg (dict): Activation after each norm. Default: dict(type='ReLU').
        upsample_norm (bool): Norm after the deconv (``upsample_cfg`` type 'deconv'); needs
            ``norm_cfg``. Default: True.
        *args, **kwargs: As :class:`~mmdet.models.roi_heads.mask_heads.FCNMaskHead`.
    """

    def __init__(self, *args, act_cfg: dict = dict(type='ReLU'), upsample_norm: bool = True,
                 **kwargs):
        super().__init__(*args, **kwargs)
        if upsample_norm and self.norm_cfg is None:
            raise ValueError('NormActFCNMaskHead: upsample_norm=True needs norm_cfg (got '
                             'None); set norm_cfg or upsample_norm=False')
        self.act_cfg = act_cfg
        self.relu = build_activation_layer(act_cfg)
        for conv_module in self.convs:
            conv_module.activate = build_activation_layer(act_cfg)
        self.upsample_norm = None
        if upsample_norm and self.upsample_method == 'deconv':
            self.upsample_norm = build_norm_layer(self.norm_cfg, self.conv_out_channels)[1]

    def forward(self, x: Tensor) -> Tensor:
        """Mask logits (N, classes, 2H, 2W) of the RoI features ``x`` (N, C, H, W)."""
        for conv in self.convs:
            x = conv(x)
        if self.upsample is not None:
            x = self.upsample(x)
            if self.upsample_method == 'deconv':
                if self.upsample_norm is not None:
                    x = self.upsample_norm(x)
                x = self.relu(x)
        return self.conv_logits(x)
