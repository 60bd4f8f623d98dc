"""RetinaNet head with shared convs, per-level norms and a configurable activation."""
from mmcv.cnn import build_activation_layer
from mmdet.models.dense_heads import RetinaSepBNHead
from mmdet.registry import MODELS


@MODELS.register_module()
class RetinaSepBNActHead(RetinaSepBNHead):
    """mmdet's :class:`~mmdet.models.dense_heads.RetinaSepBNHead` with ``act_cfg``.

    The SpineNet RetinaNet (Du et al., CVPR 2020, https://arxiv.org/abs/1912.05027; TF Model
    Garden ``RetinaNetHead``) shares its tower convs across levels, keeps a norm per level and
    uses swish; mmdet's head hard-codes ReLU. Everything else is mmdet's.

    Args:
        act_cfg (dict): Activation after each tower norm. Default: dict(type='ReLU').
        **kwargs: As :class:`~mmdet.models.dense_heads.RetinaSepBNHead`.
    """

    def __init__(self, *args, act_cfg: dict = dict(type='ReLU'), **kwargs):
        self.act_cfg = act_cfg
        super().__init__(*args, **kwargs)

    def _init_layers(self) -> None:
        super()._init_layers()
        for tower in (*self.cls_convs, *self.reg_convs):
            for conv_module in tower:
                conv_module.activate = build_activation_layer(self.act_cfg)
