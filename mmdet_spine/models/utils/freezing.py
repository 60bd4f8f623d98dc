"""One implementation of ``frozen_stages`` and ``norm_eval`` for every mmdet-spine backbone.

mmdet's backbones (``ResNet``, ``EfficientNet``) each carry a ``_freeze_stages`` and a
``train`` override; here they are one mixin. A backbone lists *what* its ``frozen_stages``
freezes in :meth:`FreezeMixin.frozen_modules` (each backbone documents the meaning of the
number in its Args); the mixin does the freezing (``eval()`` and ``requires_grad=False``) and
keeps it, and with ``norm_eval`` every BatchNorm, in eval mode across ``train()``.

The number follows mmdet's convention in every backbone: ``-1`` freezes nothing, ``0`` the
stem, ``n >= 1`` the stem and the first ``n`` stages after it, in forward order; what a
"stage" is, is the backbone's to say. (detectron2's ``freeze_at`` counts the stem as stage 1:
``freeze_at = frozen_stages + 1``.)
"""
from typing import Iterable, List

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers.config_checks import FLAG, Bound, check_fields

__all__ = ['FreezeMixin', 'freeze_modules']


def freeze_modules(modules: Iterable[nn.Module]) -> None:
    """Put ``modules`` in eval mode and stop gradients to their parameters.

    Args:
        modules (Iterable[nn.Module]): Modules to freeze.
    """
    for m in modules:
        m.eval()
        for p in m.parameters():
            p.requires_grad = False


class FreezeMixin:
    """``frozen_stages`` / ``norm_eval`` for a backbone (mix in before ``BaseModule``).

    The backbone sets ``self.frozen_stages`` and ``self.norm_eval`` (optionally validated by
    :meth:`_check_freezing`), implements :meth:`frozen_modules`, and calls
    :meth:`_freeze_stages` at the end of ``__init__``.

    Example:
        >>> class Net(FreezeMixin, nn.Module):
        ...     def __init__(self, frozen_stages=-1, norm_eval=False):
        ...         super().__init__()
        ...         self.stem, self.stage1 = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
        ...         self.frozen_stages, self.norm_eval = frozen_stages, norm_eval
        ...         self._freeze_stages()
        ...     def frozen_modules(self):
        ...         return [self.stem, self.stage1][:self.frozen_stages + 1]
        >>> net = Net(frozen_stages=0).train()
        >>> net.stem.weight.requires_grad, net.stage1.weight.requires_grad
        (False, True)
    """

    frozen_stages: int = -1
    norm_eval: bool = False

    def frozen_modules(self) -> List[nn.Module]:
        """The modules that ``self.frozen_stages`` freezes (empty for -1)."""
        raise NotImplementedError

    def _check_freezing(self, owner: str, num_stages: int, hint: str = '') -> None:
        """Raise a ``ConfigError`` unless ``frozen_stages`` is an int in ``-1..num_stages``
        and ``norm_eval`` a bool (``hint`` says what the numbers mean)."""
        check_fields(owner, dict(frozen_stages=Bound(-1, num_stages, integer=True, hint=hint),
                                 norm_eval=FLAG),
                     dict(frozen_stages=self.frozen_stages, norm_eval=self.norm_eval))

    def _freeze_stages(self) -> None:
        freeze_modules(self.frozen_modules())

    def train(self, mode: bool = True):
        """Set train mode, keeping frozen parts (and every BN with ``norm_eval``) in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
