"""Mixed-precision training on the CPU: bfloat16 autocast (``tools/train.py --amp`` there).

mmengine's ``AmpOptimWrapper`` refuses to be built without an accelerator. On the CPU,
``torch.autocast('cpu', dtype=torch.bfloat16)`` runs convolutions and matrix products in
bfloat16 (oneDNN) and keeps reductions, losses and the weights in float32; bfloat16 has
float32's exponent range, so no loss scaling is needed (Kalamkar et al., "A Study of
BFLOAT16 for Deep Learning Training", 2019, https://arxiv.org/abs/1905.12322). It pays off on
CPUs with native bfloat16 arithmetic (AVX-512 BF16, AMX); elsewhere oneDNN emulates it and
it is slower than float32 (:func:`cpu_has_native_bf16` tells which).
"""
from contextlib import contextmanager

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmdet.registry import OPTIM_WRAPPERS

from mmdet_spine.errors import ConfigError

#: /proc/cpuinfo flags of native bfloat16 arithmetic (x86).
NATIVE_BF16_FLAGS = ('amx_bf16', 'avx512_bf16')


def cpu_has_native_bf16(cpuinfo: str = '/proc/cpuinfo') -> bool:
    """Whether this x86 CPU computes bfloat16 natively (AMX or AVX-512 BF16)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(':')
                if key.strip() == 'flags':
                    return any(flag in value.split() for flag in NATIVE_BF16_FLAGS)
    except OSError:
        pass
    return False


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward (and loss) runs under bfloat16 autocast on the CPU.

    The update is the plain ``OptimWrapper``'s: gradients arrive in float32 (the weights'
    dtype), nothing is scaled. Use it as ``optim_wrapper = dict(type='CPUAmpOptimWrapper',
    optimizer=...)``; ``tools/train.py --amp`` picks it on machines without CUDA.

    Args:
        dtype (str): Autocast dtype; only ``'bfloat16'`` (CPU autocast's float16 is not
            supported by oneDNN's convolutions). Default: ``'bfloat16'``.
        **kwargs: As :class:`mmengine.optim.OptimWrapper` (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs):
        if dtype not in ('bfloat16', torch.bfloat16):
            raise ConfigError(f"CPUAmpOptimWrapper: dtype={dtype!r}; valid choices: "
                              "'bfloat16'")
        super().__init__(**kwargs)
        self.cast_dtype = torch.bfloat16
        native = 'native' if cpu_has_native_bf16() else 'emulated (slower than float32)'
        print_log(f'CPUAmpOptimWrapper: bfloat16 autocast on the CPU, {native} bfloat16',
                  logger='current')

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast('cpu', dtype=self.cast_dtype):
            yield
