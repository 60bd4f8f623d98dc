"""Runner hooks of mmdet-spine (registered into ``mmdet.registry.HOOKS``)."""
import torch
from mmengine.hooks import Hook
from mmdet.registry import HOOKS


@HOOKS.register_module()
class FlushDenormalHook(Hook):
    """Flush denormal floats to zero on the CPU for the whole run.

    Training from scratch on a CPU, activations and gradients can drift into the denormal
    range (|x| < 1.2e-38), which x86 CPUs compute up to 100x slower: measured here, a
    SpineNet RetinaNet step went from ~1 s to 8-15 s on the shapes data. Flushing them
    changes nothing at fp32 precision that matters for detection. No effect on GPUs.

    Args:
        enable (bool): Flush denormals (True) or restore IEEE behaviour (False).
            Default: True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, enable: bool = True):
        self.enable = enable

    def before_run(self, runner) -> None:
        if not torch.set_flush_denormal(self.enable) and self.enable:
            runner.logger.warning('FlushDenormalHook: this CPU cannot flush denormals')
