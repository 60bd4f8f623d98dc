"""Stop (or skip the step) at the first non-finite loss, before it reaches the weights.

mmengine applies the optimizer step inside ``model.train_step``, before any hook sees the
loss, so a NaN/Inf loss has already turned the weights into NaN by ``after_train_iter``.
:class:`NonFiniteLossHook` therefore wraps the two calls inside ``train_step`` on the running
objects: the model's ``parse_losses`` (to check every loss term of the iteration) and the
optim wrapper's ``update_params``/``step`` (to withhold the update). In distributed runs the
verdict is all-reduced, so every rank stops or skips together instead of one rank hanging.

The checkpoint side of the promise, never writing non-finite weights, is kept by the atomic
checkpoint writer (:mod:`mmdet_spine.engine.atomic_checkpoint`), whatever produced them.
"""
import math
from typing import Dict, List, Optional

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmdet.registry import HOOKS

from ..errors import ConfigError, TrainingAborted


class NonFiniteLossError(TrainingAborted):
    """A loss term, a gradient or a weight became NaN or Inf."""


def _is_finite_number(value) -> bool:
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value).all())
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True  # not a number (e.g. a string entry): nothing to check


def _fmt(value) -> str:
    if isinstance(value, torch.Tensor):
        value = value.detach().float()
        value = value.item() if value.numel() == 1 else value.sum().item()
    return f'{value:.4g}' if isinstance(value, float) else str(value)


def _any_rank(flag: bool) -> bool:
    """``flag`` OR-ed over all ranks (the identity outside distributed runs)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == 'nccl':
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def _sync_log_vars(finite: bool, log_vars: Dict):
    """Agree on ``finite`` across ranks and average the logged values over them.

    mmengine logs rank 0's own losses; averaging them (as mmdet 2.x did) makes the logged
    curve that of the whole batch, e.g. equal to a one-process run with the summed batch for
    heads whose normaliser is all-reduced (ATSS, FCOS, ...). Values are only averaged when
    every rank logs the same number of them; the verdict is always shared.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return finite, log_vars
    device = 'cuda' if dist.get_backend() == 'nccl' else 'cpu'
    keys = [k for k, v in log_vars.items() if isinstance(v, (torch.Tensor, float, int))]
    head = torch.tensor([len(keys), -len(keys), 0.0 if finite else 1.0], device=device)
    dist.all_reduce(head, op=dist.ReduceOp.MAX)
    finite = head[2].item() == 0
    if head[0].item() != -head[1].item() or not keys:
        return finite, log_vars
    values = torch.stack([torch.as_tensor(log_vars[k], dtype=torch.float32).detach()
                          .reshape(()).to(device) for k in keys])
    dist.all_reduce(values)
    values /= dist.get_world_size()
    synced = type(log_vars)(log_vars)
    for k, v in zip(keys, values.cpu()):
        synced[k] = v
    return finite, synced


def _batch_files(data_batch) -> List[str]:
    samples = data_batch.get('data_samples') if isinstance(data_batch, dict) else None
    files = []
    for s in samples or []:
        path = getattr(s, 'metainfo', {}).get('img_path') if hasattr(s, 'metainfo') else None
        if path:
            files.append(str(path))
    return files


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Detect a NaN/Inf loss (or gradient) at the iteration it happens.

    In distributed runs all ranks share the verdict (and the logged loss values are averaged
    over ranks), so they stop or skip together.

    Args:
        action (str): ``'stop'`` (default): raise :class:`NonFiniteLossError` naming the
            iteration, every loss term and the images of the batch; no update is applied and
            no checkpoint is written. ``'skip'``: drop this iteration's update (the weights
            and optimizer state stay as they were), log a counted warning and go on.
        max_consecutive_skips (int): With ``action='skip'``, stop anyway after this many
            skipped iterations in a row (the run is diverging, not hitting one bad batch).
            Default: 10.
        check_grads (bool): Also withhold the update when the loss is finite but a gradient
            is not (plain ``OptimWrapper`` only; ``AmpOptimWrapper``'s loss scaler already
            skips those steps by design). Default: True.
    """

    priority = 'VERY_HIGH'
    ACTIONS = ('stop', 'skip')

    def __init__(self, action: str = 'stop', max_consecutive_skips: int = 10,
                 check_grads: bool = True):
        if action not in self.ACTIONS:
            raise ConfigError(f'NonFiniteLossHook: action={action!r} is not one of '
                              f'{self.ACTIONS}')
        if not isinstance(max_consecutive_skips, int) or max_consecutive_skips < 1:
            raise ConfigError('NonFiniteLossHook: max_consecutive_skips must be a positive int, '
                              f'got {max_consecutive_skips!r}')
        self.action = action
        self.max_consecutive_skips = max_consecutive_skips
        self.check_grads = check_grads
        self.skipped = 0  # total skipped iterations
        self.consecutive = 0
        self._runner = None
        self._where = ''
        self._files: List[str] = []
        self._withhold = False
        self._skipped_this_iter = False

    # -- wiring ---------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        self._runner = runner
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if getattr(model, '_nonfinite_guard', None) is not self:
            orig_parse = model.parse_losses

            def parse_losses(losses, _orig=orig_parse):
                loss, log_vars = _orig(losses)
                return self._check_loss(loss, log_vars)

            model.parse_losses = parse_losses
            model._nonfinite_guard = self
        wrappers = getattr(runner.optim_wrapper, 'optim_wrappers', None)
        for ow in (wrappers.values() if wrappers else [runner.optim_wrapper]):
            self._wrap_optim_wrapper(ow)

    def _wrap_optim_wrapper(self, ow: OptimWrapper) -> None:
        if getattr(ow, '_nonfinite_guard', None) is self:
            return
        orig_update, orig_step = ow.update_params, ow.step

        def update_params(loss, *args, _orig=orig_update, **kwargs):
            if self._withhold:
                self._withhold = False
                ow.zero_grad()
                return None
            return _orig(loss, *args, **kwargs)

        def step(*args, _orig=orig_step, **kwargs):
            if (self.check_grads and not isinstance(ow, AmpOptimWrapper)
                    and self._grads_not_finite(ow)):
                self._on_nonfinite({}, what='gradient')
                return None  # the update is dropped; update_params zeroes the grads
            try:
                return _orig(*args, **kwargs)
            except RuntimeError as e:  # torch: "value cannot be converted ... without overflow"
                if 'overflow' not in str(e):
                    raise
                self._on_overflow(ow, e)

        # with mmengine's ``compile`` option the runner compiles ``train_step``: the update
        # (backward, the grad check, the optimizer step) runs eagerly, outside the graph
        ow.update_params = torch.compiler.disable(update_params)
        ow.step = step
        ow._nonfinite_guard = self

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._withhold = False
        total = len(runner.train_dataloader) if hasattr(runner.train_dataloader, '__len__') else '?'
        self._where = (f'iteration {runner.iter + 1} (epoch {runner.epoch + 1}, batch '
                       f'{batch_idx + 1}/{total})')
        self._files = _batch_files(data_batch)
        self._skipped_this_iter = False

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self._skipped_this_iter:
            self.consecutive = 0

    # -- checks ---------------------------------------------------------------------------
    @staticmethod
    def _grads_not_finite(ow: OptimWrapper) -> bool:
        grads = [p.grad for g in ow.optimizer.param_groups for p in g['params']
                 if p.grad is not None]
        if not grads:
            return _any_rank(False)
        norms = torch._foreach_norm(grads)
        bad = not bool(torch.isfinite(torch.stack([n.float() for n in norms])).all())
        return _any_rank(bad)

    def _check_loss(self, loss, log_vars: Dict):
        finite = _is_finite_number(loss) and all(
            _is_finite_number(v) for k, v in log_vars.items() if 'loss' in k)
        finite, log_vars = _sync_log_vars(finite, log_vars)
        if not finite:
            self._on_nonfinite(log_vars, what='loss')
            self._withhold = True
            log_vars = type(log_vars)((k, v) for k, v in log_vars.items()
                                      if _is_finite_number(v))
        return loss, log_vars

    def _on_overflow(self, ow: OptimWrapper, error: RuntimeError) -> None:
        """The optimizer step itself overflowed (e.g. ``lr=1e39`` does not fit float32)."""
        found = []
        for i, group in enumerate(ow.optimizer.param_groups):
            dtypes = {p.dtype for p in group['params'] if p.is_floating_point()}
            limit = min((torch.finfo(d).max for d in dtypes), default=torch.finfo().max)
            for key, value in group.items():
                values = value if isinstance(value, (tuple, list)) else [value]
                if key in ('params', 'initial_lr'):
                    continue
                if any(isinstance(v, (int, float)) and not isinstance(v, bool) and
                       (not math.isfinite(v) or abs(v) > limit) for v in values):
                    found.append(f'param group {i}: {key}={value!r} does not fit '
                                 f'{"/".join(str(d).replace("torch.", "") for d in dtypes)} '
                                 f'(max {limit:.3g})')
        more = f' (and {len(found) - 3} more)' if len(found) > 3 else ''
        what = ('; '.join(found[:3]) + more) if found else str(error).strip().splitlines()[0]
        msg = (f'Optimizer step overflowed at {self._where}: {what}. Training stopped before '
               'applying the update; no checkpoint holds it. Use a learning rate (and other '
               'optimizer values) the weights\' dtype can represent.')
        if self._runner is not None:
            self._runner.logger.error(msg)
        raise NonFiniteLossError(msg) from None

    def _on_nonfinite(self, log_vars: Dict, what: str) -> None:
        terms = ', '.join(f'{k}={_fmt(v)}' for k, v in log_vars.items() if 'loss' in k)
        msg = f'Non-finite {what} at {self._where}'
        msg += f': {terms}' if terms else ''
        if self._files:
            more = len(self._files) - 4
            shown = ', '.join(self._files[:4]) + (f' (+{more} more)' if more > 0 else '')
            msg += f'; images: {shown}'
        logger = self._runner.logger if self._runner is not None else None
        if self.action == 'skip':
            self.skipped += 1
            self.consecutive += 1
            self._skipped_this_iter = True
            if self.consecutive <= self.max_consecutive_skips:
                if logger is not None:
                    logger.warning(f'{msg}. Skipped this update ({self.skipped} skipped so '
                                   'far); weights and optimizer state are unchanged.')
                return
            msg += (f'. {self.consecutive} iterations in a row were non-finite '
                    f'(max_consecutive_skips={self.max_consecutive_skips})')
        last = None
        if self._runner is not None:
            last = self._runner.message_hub.get_info('last_ckpt')
        msg += ('. Training stopped before applying the update; no checkpoint holds these '
                'values' + (f' (last good checkpoint: {last})' if last else '') +
                '. Lower the learning rate, add optim_wrapper.clip_grad, check the images, or '
                "use custom_hooks NonFiniteLossHook(action='skip').")
        if logger is not None:
            logger.error(msg)
        raise NonFiniteLossError(msg)


def non_finite_tensors(state_dict: Dict, limit: int = 3) -> Optional[List[str]]:
    """Names (at most ``limit``) of floating tensors in ``state_dict`` holding NaN/Inf."""
    bad = []
    for name, value in state_dict.items():
        if (isinstance(value, torch.Tensor) and value.is_floating_point()
                and not bool(torch.isfinite(value).all())):
            bad.append(name)
            if len(bad) >= limit:
                break
    return bad or None
