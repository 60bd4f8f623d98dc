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


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Run the model channels-last (NHWC) on the CPU, for training, validation and testing.

    Calls :func:`mmdet_spine.models.utils.convert_to_channels_last` on the model before
    training, validation or testing starts, i.e. after the runner initialised the weights
    and loaded any checkpoint (random initialisers fill memory in storage order, so
    converting first would draw a different initialisation than an NCHW run). oneDNN's CPU
    convolutions compute in NHWC, so NCHW tensors cost a reorder per convolution. Measured numbers: docs/benchmarks.md. Values are unchanged up to float
    rounding; checkpoints stay loadable by NCHW models. A model already wrapped for
    distributed training is left NCHW: DDP lays out its gradient buckets for the parameters'
    strides when it wraps the model, before any hook runs (measured: converting afterwards
    made a 2-process run's losses drift from the 1-process run's by 1.7 % after one step).

    Args:
        devices (tuple[str]): Device types for which to switch; the model's device is read
            from its first parameter. Default: ``('cpu',)`` (on GPUs NHWC pays off mainly
            with AMP on tensor cores, which is a different decision).
    """

    priority = 'VERY_HIGH'

    def __init__(self, devices=('cpu',)):
        self.devices = tuple(devices)
        self._handles = []
        self._skipped = False

    def before_train(self, runner) -> None:
        self._convert(runner)

    def before_val(self, runner) -> None:
        self._convert(runner)

    def before_test(self, runner) -> None:
        self._convert(runner)

    def _convert(self, runner) -> None:
        from mmengine.model import is_model_wrapper
        from ..models.utils import convert_to_channels_last
        if self._handles or self._skipped:
            return
        if is_model_wrapper(runner.model):
            runner.logger.info('ChannelsLastHook: the model is wrapped for distributed '
                               'training; it stays NCHW')
            self._skipped = True
            return
        model = runner.model
        param = next(model.parameters(), None)
        if param is None or param.device.type not in self.devices:
            return
        self._handles = convert_to_channels_last(model)
        runner.logger.info(f'ChannelsLastHook: {type(model).__name__} runs channels-last on '
                           f'{param.device.type}')

    def after_run(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._skipped = False


@HOOKS.register_module()
class FuseConvBNHook(Hook):
    """Fold every batch norm into its conv before testing (``tools/test.py --fuse-conv-bn``).

    On the first test batch, after the checkpoint is loaded, the model's (conv, BN) pairs are
    found from the data flow of that batch's forward and folded
    (:func:`mmdet_spine.models.utils.fuse_conv_bn_for_inference`); the network outputs on the
    batch before and after are compared and the largest difference is logged. Test-time only:
    validation during training is never fused (it would train different parameters).

    Args:
        atol (float): Largest allowed absolute difference of the network outputs, relative
            to the largest output; above it the run stops with one line. Default: 1e-4.
    """

    priority = 'LOW'

    def __init__(self, atol: float = 1e-4):
        self.atol = atol
        self._done = False

    def before_test_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._done or data_batch is None:
            return
        from mmengine.model import is_model_wrapper
        from ..errors import UserError
        from ..models.utils import count_norm_layers, fuse_conv_bn_for_inference
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        with torch.no_grad():
            data = model.data_preprocessor(data_batch, False)
            inputs, samples = data['inputs'], data['data_samples']
            before = _flat_outputs(model._forward(inputs, samples))
            fuse_conv_bn_for_inference(model, example=lambda m: m._forward(inputs, samples))
            after = _flat_outputs(model._forward(inputs, samples))
        diff = max((a - b).abs().max().item() for a, b in zip(before, after))
        scale = max(a.abs().max().item() for a in before)
        self._done = True
        if diff > self.atol * max(scale, 1.0):
            raise UserError(f'--fuse-conv-bn: fused outputs differ by {diff:.3g} (largest '
                            f'output {scale:.3g}), more than atol={self.atol}; test without it')
        runner.logger.info(f'FuseConvBNHook: {count_norm_layers(model)} norm layers left; '
                           f'network outputs differ by {diff:.2e} at most (largest output '
                           f'{scale:.3g})')


def _flat_outputs(outputs) -> list:
    """The tensors of a nested tuple/list/dict of network outputs, in order."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    return [t for o in outputs for t in _flat_outputs(o)] if isinstance(
        outputs, (list, tuple)) else []
