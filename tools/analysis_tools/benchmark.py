"""Benchmark detectors: parameters, FLOPs, latency, throughput, peak memory, training step.

For each config: parameters; FLOPs of one image (mmengine's ``FlopAnalyzer``; **one
multiply-add counts as one FLOP**, as the SpineNet and EfficientDet papers count); inference
latency for each batch size (warm-up runs, then the median and spread of N timed runs) and
images/s; peak memory of one inference (tensor memory allocated beyond weights and input:
CUDA ``max_memory_allocated``, CPU ``torch.profiler`` allocation events; plus the process's
peak RSS); optionally the time and peak memory of one training step. Prints a table and writes
JSON (``--json``).

What is timed:

- ``network``: the network forward ``model._forward`` (backbone + neck + head outputs, no box
  decoding, no NMS; for two-stage detectors mmdet's ``_forward`` includes the RPN's proposal
  NMS and the RoI heads) on a ready, normalised input tensor;
- ``end2end``: ``model.predict`` (network + box decoding + NMS, boxes in input coordinates),
  same input; data loading and the data preprocessor are excluded from both;
- ``train step`` (``--train``): forward + losses + backward + SGD step on random boxes.

With ``--compare`` the reference implementation runs in a worker process beside this one, its
runs alternating with ours (ours, reference, ours, ...) so that load from other processes hits
both alike, and the ratios ours/reference are printed:

- EfficientDet configs: effdet's ``tf_efficientdet_dX`` (random init), whole network, same
  input, in ``effdet_latency.py`` (beside this file): effdet imports torchvision, which this
  project never installs or imports, so only that worker imports it (where torchvision cannot
  load, ``$MMDET_SPINE_EFFDET_PRELUDE`` names a module that imports effdet without it; the
  tests use their stand-in) and this process never sees either;
- SpineNet configs: the backbone against TF Model Garden's ``SpineNet`` (``tf.function``,
  inference), which runs in a TensorFlow interpreter (``--tf-python``, else
  ``$MMDET_SPINE_TF_PYTHON``, else a checkout's ``.venv-tf``) as a subprocess
  (``tf_spinenet_latency.py``); skipped with a note if there is none.

Usage::

    python tools/analysis_tools/benchmark.py CONFIG [CONFIG ...] [--device cpu|cuda]
        [--input-size 640 | 512x768] [--batch-sizes 1 8] [--runs 10] [--warmup 2]
        [--fuse-conv-bn] [--channels-last] [--compile] [--train [--train-batch 2]]
        [--no-end2end] [--no-flops] [--compare] [--pause 1.0] [--threads N] [--json out.json]
        [--cfg-options model.bbox_head.num_classes=91]
"""
import argparse
import contextlib
import copy
import gc
import json
import logging
import os
import os.path as osp
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmdet_spine.engine.cli import parse_size

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TF_PYTHON = os.environ.get('MMDET_SPINE_TF_PYTHON') or osp.join(REPO, '.venv-tf', 'bin', 'python')
TF_WORKER = osp.join(osp.dirname(osp.abspath(__file__)), 'tf_spinenet_latency.py')
# effdet (and its torchvision import) only ever runs in this worker process, never here
EFFDET_WORKER = osp.join(osp.dirname(osp.abspath(__file__)), 'effdet_latency.py')
FLOPS_NOTE = 'FLOPs count one multiply-add as one FLOP (as the SpineNet / EfficientDet papers)'


# --------------------------------------------------------------------------- arguments
def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text!r} must be >= 1')
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('configs', nargs='+', help='config file(s)')
    p.add_argument('--checkpoint', help='weights to load (default: random init)')
    p.add_argument('--device', default='cpu', help="'cpu', 'cuda' or 'cuda:N'")
    p.add_argument('--input-size', type=parse_size,
                   help="N or HxW; default the config's test resize (EfficientDet: its size)")
    p.add_argument('--batch-sizes', type=positive_int, nargs='+', default=[1, 8])
    p.add_argument('--runs', type=positive_int, default=10, help='timed runs per measurement')
    p.add_argument('--warmup', type=int, default=2, help='untimed runs first')
    p.add_argument('--pause', type=float, default=1.0,
                   help='seconds of idle before each timed call, so that the previous '
                        "call's (or the reference's) spinning threads go idle (default 1.0)")
    p.add_argument('--threads', type=positive_int,
                   help='CPU threads (torch, and TF with --compare); default torch\'s')
    p.add_argument('--fuse-conv-bn', action='store_true',
                   help='fold BN into the preceding convs (inference only)')
    p.add_argument('--channels-last', action='store_true', help='NHWC memory format')
    p.add_argument('--compile', action='store_true',
                   help='torch.compile (inductor) the timed forward, with inductor freezing: '
                        'weights become constants, so BN folds and oneDNN fuses conv + '
                        'activation; compiling takes 1-2 min per model and input size')
    p.add_argument('--no-end2end', action='store_true',
                   help='time only the network forward, not predict() with NMS')
    p.add_argument('--no-flops', action='store_true', help='skip the FLOP count')
    p.add_argument('--train', action='store_true', help='also time one training step')
    p.add_argument('--train-batch', type=positive_int, default=2,
                   help='batch of the training step (default 2)')
    p.add_argument('--compare', action='store_true',
                   help='time the reference implementation too, alternating runs')
    p.add_argument('--reference', help='effdet model name for --compare (default: matched '
                   'from the config, e.g. tf_efficientdet_d0)')
    p.add_argument('--tf-python', default=TF_PYTHON,
                   help='python of the TF Model Garden environment (default .venv-tf)')
    p.add_argument('--json', help='write the results here')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config fields, e.g. model.bbox_head.num_classes=91')
    return p


# --------------------------------------------------------------------------- measurements
def summarize(seconds: Sequence[float]) -> Dict[str, float]:
    """Median, quartiles, min, max (ms) of a list of run times in seconds."""
    ms = sorted(s * 1e3 for s in seconds)
    q = statistics.quantiles(ms, n=4, method='inclusive') if len(ms) > 1 else [ms[0]] * 3
    return dict(median_ms=statistics.median(ms), p25_ms=q[0], p75_ms=q[2], min_ms=ms[0],
                max_ms=ms[-1], runs=len(ms))


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def alternate_runs(fns: Sequence[Callable[[], float]], runs: int, warmup: int,
                   pause: float = 0.0) -> List[List[float]]:
    """Call each of ``fns`` in turn, ``warmup`` untimed then ``runs`` timed rounds.

    Each fn runs once and returns its own duration in seconds; alternating keeps slow
    drifts of the machine's load from favouring one of them. ``pause`` seconds of sleep
    before each call let the previous call's worker threads go idle: TF's and OpenMP's
    threads spin for a while after their work, and a reference process's spinning threads
    would otherwise take cores from the next call (measured: ours 1.26 s alone, 1.70 s
    right after TF).
    """
    times = [[] for _ in fns]
    for round_ in range(warmup + runs):
        for i, fn in enumerate(fns):
            if pause:
                time.sleep(pause)
            t = fn()
            if round_ >= warmup:
                times[i].append(t)
    return times


def compile_for_inference(module: nn.Module) -> Callable:
    """``torch.compile(module)`` with inductor's freezing on (inference under no_grad only).

    Freezing treats the weights as constants: conv + BN fold, weights are pre-packed for
    oneDNN and conv + activation become one kernel, which eager PyTorch cannot do.
    """
    import torch._inductor.config as inductor_config
    inductor_config.freezing = True
    return torch.compile(module)


def timed(fn: Callable[[], object], device: torch.device) -> Callable[[], float]:
    """Wrap ``fn`` so that it returns its wall time (synchronising CUDA)."""

    def run() -> float:
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        return time.perf_counter() - start
    return run


def process_peak_rss_mib() -> float:
    """Peak resident set size of this process so far (``ru_maxrss``), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory_mib(fn: Callable[[], object], device: torch.device) -> Dict[str, object]:
    """Peak tensor memory one call of ``fn`` allocates beyond what is live before it, MiB.

    CUDA: ``torch.cuda.max_memory_allocated`` minus the memory allocated at the start. CPU:
    torch has no allocator statistics, and the resident set size hides reused heap pages, so
    the call runs once under ``torch.profiler`` with ``profile_memory=True`` and the
    allocation (+) and free (-) events are summed in time order; the running maximum is the
    peak. Weights and the input are live before and not counted.
    """
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return dict(peak_memory_mib=(torch.cuda.max_memory_allocated(device) - base) / 2**20,
                    peak_memory_method='torch.cuda.max_memory_allocated')
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    deltas = []
    for e in prof.events():
        delta = e.cpu_memory_usage if e.name == '[memory]' else e.self_cpu_memory_usage
        if delta:
            deltas.append((e.time_range.start, delta))
    current = peak = 0
    for _, delta in sorted(deltas, key=lambda d: d[0]):
        current += delta
        peak = max(peak, current)
    return dict(peak_memory_mib=peak / 2**20,
                peak_memory_method='torch.profiler allocation events (CPU tensors)')


# --------------------------------------------------------------------------- models
def load_config(path: str, cfg_options: Optional[dict]):
    """The config with overrides; registers mmdet_spine and sets the default scope."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    if not osp.isfile(path):
        raise SystemExit(f'config={path!r} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    import mmdet_spine  # noqa: F401
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return cfg


def default_input_size(cfg) -> tuple:
    """(H, W) a config's model is meant for: the backbone's fixed ``input_size``
    (EfficientDet), else the largest ``Resize`` scale of the test pipeline, else 640."""
    size = cfg.model.get('backbone', {}).get('input_size')
    if size:
        return tuple(size) if not isinstance(size, int) else (size, size)
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline', []) or []
    for step in pipeline:
        if step.get('type') in ('Resize', 'FixScaleResize') and step.get('scale'):
            scale = step['scale']
            scale = (scale, scale) if isinstance(scale, int) else tuple(scale)
            if step.get('keep_ratio', False):
                return (max(scale), max(scale))  # a square image of the longer side
            return (scale[1], scale[0])  # mmcv scales are (w, h)
    return (640, 640)


def build_model(cfg, checkpoint: Optional[str]) -> nn.Module:
    """Build the detector with BN (SyncBN reverted), initialised or loaded, in eval mode."""
    from mmdet.registry import MODELS
    from mmengine.model import revert_sync_batchnorm
    from mmengine.runner import load_checkpoint
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every parameter at INFO
    try:
        torch.manual_seed(0)
        model = MODELS.build(copy.deepcopy(cfg.model))
        model.init_weights()
    finally:
        logger.setLevel(level)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu')
    return revert_sync_batchnorm(model).eval()


def make_samples(batch: int, size: tuple, num_classes: int, with_gt: bool, with_masks: bool,
                 device: torch.device, seed: int = 0):
    """``DetDataSample``s with the metainfo of an unscaled ``size`` image (and random boxes)."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    h, w = size
    samples = []
    for _ in range(batch):
        s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                        batch_input_shape=(h, w), scale_factor=(1.0, 1.0)))
        if with_gt:
            n = 3
            xy = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.6, h * 0.6])
            wh = (torch.rand(n, 2, generator=g) * 0.3 + 0.1) * torch.tensor([w, h])
            boxes = torch.cat([xy, xy + wh], 1)
            gt = InstanceData(bboxes=boxes.to(device),
                              labels=torch.randint(0, num_classes, (n,), generator=g).to(device))
            if with_masks:
                masks = torch.zeros(n, h, w, dtype=torch.uint8)
                for i, (x0, y0, x1, y1) in enumerate(boxes.round().long().tolist()):
                    masks[i, y0:y1, x0:x1] = 1
                gt.masks = BitmapMasks(masks.numpy(), h, w)
            s.gt_instances = gt
        samples.append(s)
    return samples


def num_classes_of(model: nn.Module) -> int:
    """Classes of a detector's (first) classification head."""
    for name in ('bbox_head', 'roi_head'):
        head = getattr(model, name, None)
        if head is None:
            continue
        if hasattr(head, 'num_classes'):
            return head.num_classes
        if hasattr(head, 'bbox_head'):
            return head.bbox_head.num_classes
    return 1


def flatten(outputs) -> List[torch.Tensor]:
    """Every tensor of a nested tuple/list/dict of network outputs, in order."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    return [t for o in outputs for t in flatten(o)]


class NetworkForward(nn.Module):
    """``model._forward(x, samples)`` as a module of one tensor input (for tracing / FLOPs)."""

    def __init__(self, model: nn.Module, samples):
        super().__init__()
        self.model = model
        self.samples = samples

    def forward(self, x: torch.Tensor):
        return self.model._forward(x, self.samples)


def count_flops(model: nn.Module, size: tuple, device: torch.device) -> dict:
    """FLOPs (multiply-adds) of the network forward on one ``size`` image, by operator."""
    from mmengine.analysis import FlopAnalyzer
    x = torch.zeros(1, 3, *size, device=device)
    analyzer = FlopAnalyzer(NetworkForward(model, make_samples(1, size, 1, False, False, device)),
                            (x,))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        total = analyzer.total()
    return dict(flops=int(total), flops_by_operator={k: int(v) for k, v in
                                                     analyzer.by_operator().items()},
                flops_uncounted_ops=sorted(analyzer.unsupported_ops()))


# --------------------------------------------------------------------------- references
def effdet_reference_name(cfg) -> Optional[str]:
    """``tf_efficientdet_dX`` whose scaling row matches an EfficientDet config, else None."""
    from mmdet_spine.models.detectors.efficientdet_scaling import EFFICIENTDET_SCALING
    m = cfg.model
    if m.get('type') != 'EfficientDet':
        return None
    neck, head = m.get('neck', {}), m.get('bbox_head', {})
    scale = head.get('anchor_generator', {}).get('octave_base_scale')
    for variant, row in EFFICIENTDET_SCALING.items():
        lo, hi = row['levels']
        if (m.backbone.get('arch') == row['backbone']
                and neck.get('out_channels') == row['bifpn_channels']
                and neck.get('num_stages') == row['bifpn_stages']
                and head.get('stacked_convs') == row['head_convs']
                and neck.get('num_outs') == hi - lo + 1 and scale == row['anchor_scale']):
            return f'tf_efficientdet_{variant}'
    return None


class WorkerReference:
    """A reference implementation timed in its own process, one JSON line per request.

    The worker prints ``{"ready": 1, "params": ..., "name": ...}`` once built, then answers
    ``{"batch": B}`` (new input, untimed first run) and ``{"run": 1}`` -> ``{"seconds": s}``.
    Running it apart keeps its imports (TensorFlow; effdet, which needs a torchvision
    stand-in) out of this process.

    Args:
        cmd (list[str]): The worker's command line (with ``--serve``).
        scope (str): What the reference computes, for the report.
    """

    def __init__(self, cmd: List[str], scope: str):
        self.scope = scope
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1, cwd=REPO)
        self.worker = cmd[1]
        hello = self._read()
        self.name, self.params = hello['name'], hello['params']
        self.batch = None

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f'the reference worker exited ({self.proc.wait()}); run '
                               f'{self.worker} by hand to see why')
        return json.loads(line)

    def _ask(self, **msg) -> dict:
        self.proc.stdin.write(json.dumps(msg) + '\n')
        return self._read()

    def runner(self, x: torch.Tensor) -> Callable[[], float]:
        batch = x.shape[0]

        def fn():
            if self.batch != batch:
                self._ask(batch=batch)  # builds the input, runs once (not timed)
                self.batch = batch
            return self._ask(run=1)['seconds']
        return fn

    def close(self):
        with contextlib.suppress(Exception):
            self.proc.stdin.write(json.dumps(dict(quit=1)) + '\n')
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)


def effdet_reference(name: str, size: tuple, num_classes: int, device: torch.device,
                     threads: int) -> WorkerReference:
    """effdet ``name`` (random init, eval) at ``size``: network outputs, like ours."""
    cmd = [sys.executable, EFFDET_WORKER, '--serve', '--name', name, '--size', str(size[0]),
           str(size[1]), '--num-classes', str(num_classes), '--device', str(device),
           '--threads', str(threads)]
    return WorkerReference(cmd, 'network (backbone + BiFPN + class/box nets, no NMS)')


def tf_spinenet_reference(python: str, backbone_cfg: dict, size: tuple,
                          threads: int) -> WorkerReference:
    """TF Model Garden ``SpineNet`` in ``.venv-tf``, timing ``tf.function`` inference."""
    act = backbone_cfg.get('act_cfg', {}).get('type', 'ReLU')
    act = 'swish' if act.lower() in ('swish', 'silu') else 'relu'
    cmd = [python, TF_WORKER, '--serve', '--arch', str(backbone_cfg.get('arch', '49')),
           '--min-level', str(backbone_cfg.get('min_level', 3)),
           '--max-level', str(backbone_cfg.get('max_level', 7)), '--activation', act,
           '--size', f'{size[0]}x{size[1]}', '--threads', str(threads)]
    return WorkerReference(cmd, 'backbone only (P3-P7 features), tf.function inference')


def build_reference(cfg, args, size, model, device, threads):
    """(reference, the part of our model it compares with) or (None, reason)."""
    name = args.reference or effdet_reference_name(cfg)
    if name:
        return effdet_reference(name, size, num_classes_of(model), device, threads), None
    backbone = cfg.model.get('backbone', {})
    if backbone.get('type') == 'SpineNet':
        if device.type != 'cpu':
            return None, 'TF SpineNet reference runs on the CPU only'
        if not osp.exists(args.tf_python):
            return None, f'TF environment not found at {args.tf_python} (see requirements/' \
                         f'tf_reference.txt)'
        return tf_spinenet_reference(args.tf_python, backbone, size, threads), 'backbone'
    return None, (f'no reference implementation for {cfg.model.get("type")} with '
                  f'{backbone.get("type")}')


# --------------------------------------------------------------------------- benchmark
def machine_info(device: torch.device) -> dict:
    """CPU / GPU model, core count, library versions."""
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    import mmcv
    import mmdet
    import mmengine
    info = dict(cpu=cpu, nproc=os.cpu_count(), torch_threads=torch.get_num_threads(),
                python=platform.python_version(), torch=torch.__version__,
                mmcv=mmcv.__version__, mmdet=mmdet.__version__, mmengine=mmengine.__version__,
                device=str(device))
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    return info


def train_step(model: nn.Module, cfg, size: tuple, batch: int, runs: int, warmup: int,
               device: torch.device, channels_last: bool) -> dict:
    """Median time and peak memory of forward + loss + backward + SGD step."""
    model = copy.deepcopy(model).train()
    optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-5,
                            momentum=0.9)
    with_masks = bool(getattr(getattr(model, 'roi_head', None), 'with_mask', False))
    x = torch.randn(batch, 3, *size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    samples = make_samples(batch, size, num_classes_of(model), True, with_masks, device)

    def step():
        optim.zero_grad(set_to_none=True)
        loss, _ = model.parse_losses(model.loss(x, samples))
        loss.backward()
        optim.step()
    times = alternate_runs([timed(step, device)], runs, warmup)[0]
    return dict(batch=batch, **summarize(times), **peak_memory_mib(step, device),
                images_per_s=batch / statistics.median(times))


def benchmark_config(path: str, args, device: torch.device, threads: int) -> dict:
    """Every measurement of one config (see the module docstring)."""
    cfg = load_config(path, args.cfg_options)
    size = tuple(args.input_size or default_input_size(cfg))
    model = build_model(cfg, args.checkpoint).to(device)
    result = dict(config=path, model=cfg.model.get('type'),
                  backbone=cfg.model.get('backbone', {}).get('type'), input_size=list(size),
                  num_classes=num_classes_of(model),
                  params=sum(p.numel() for p in model.parameters()),
                  settings=dict(fuse_conv_bn=args.fuse_conv_bn,
                                channels_last=args.channels_last, compile=args.compile,
                                runs=args.runs, warmup=args.warmup, pause_s=args.pause,
                                threads=threads,
                                checkpoint=args.checkpoint, flush_denormal=True))
    print(f'== {path}: {result["model"]} / {result["backbone"]}, input {size[0]}x{size[1]}, '
          f'{result["params"]:,} parameters', flush=True)
    if not args.no_flops:
        start = time.perf_counter()
        result.update(count_flops(model, size, device))
        result['flops_note'] = FLOPS_NOTE
        print(f'   FLOPs {result["flops"] / 1e9:.3f} G (multiply-adds; '
              f'{time.perf_counter() - start:.0f} s to count)', flush=True)
    if args.train:
        result['train'] = train_step(model, cfg, size, args.train_batch, args.runs,
                                     args.warmup, device, args.channels_last)
        t = result['train']
        print(f'   train step batch {t["batch"]}: {t["median_ms"]:.1f} ms '
              f'(p25-p75 {t["p25_ms"]:.1f}-{t["p75_ms"]:.1f}), peak +{t["peak_memory_mib"]:.0f}'
              f' MiB', flush=True)

    infer = model
    if args.fuse_conv_bn:
        from mmdet_spine.models.utils import count_norm_layers, fuse_conv_bn_for_inference
        x1 = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(1)).to(device)
        s1 = make_samples(1, size, 1, False, False, device)
        with torch.no_grad():
            before = model._forward(x1, s1)
        infer = fuse_conv_bn_for_inference(copy.deepcopy(model),
                                           example=lambda m: m._forward(x1, s1))
        with torch.no_grad():
            after = infer._forward(x1, s1)
        result['settings']['norm_layers_after_fusion'] = count_norm_layers(infer)
        diff = max((a - b).abs().max().item() for a, b in zip(flatten(before), flatten(after)))
        scale = max(a.abs().max().item() for a in flatten(before))
        result['settings']['fusion_max_abs_diff'] = diff
        result['settings']['fusion_max_rel_diff'] = diff / max(scale, 1e-12)
        print(f'   fused BN into convs: {count_norm_layers(infer)} norm layers left; outputs '
              f'differ by {diff:.2e} at most (largest output {scale:.3g})', flush=True)
    if args.channels_last:
        infer = infer.to(memory_format=torch.channels_last)
    net_module = NetworkForward(infer, None)
    network = net_module
    if args.compile:
        network = compile_for_inference(net_module)
        x1 = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(1)).to(device)
        if args.channels_last:
            x1 = x1.contiguous(memory_format=torch.channels_last)
        net_module.samples = make_samples(1, size, 1, False, False, device)
        start = time.perf_counter()
        with torch.no_grad():
            eager, compiled = flatten(net_module(x1)), flatten(network(x1))
        diff = max((a - b).abs().max().item() for a, b in zip(eager, compiled))
        scale = max(a.abs().max().item() for a in eager)
        result['settings']['compile_max_abs_diff'] = diff
        result['settings']['compile_max_rel_diff'] = diff / max(scale, 1e-12)
        print(f'   compiled in {time.perf_counter() - start:.0f} s; outputs differ from eager '
              f'by {diff:.2e} at most (largest output {scale:.3g})', flush=True)

    reference, ref_part = None, None
    if args.compare:
        reference, ref_part = build_reference(cfg, args, size, model, device, threads)
        if reference is None:
            result['compare'] = dict(skipped=ref_part)
            print(f'   compare: skipped ({ref_part})', flush=True)
        else:
            result['compare'] = dict(reference=reference.name, scope=reference.scope,
                                     reference_params=reference.params, batches={})
            if ref_part == 'backbone':
                ours_part = infer.backbone
                if args.compile:
                    ours_part = compile_for_inference(ours_part)
                result['compare']['params'] = sum(p.numel() for p in ours_part.parameters())
    result['latency'] = {}
    try:
        for batch in args.batch_sizes:
            x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(batch))
            x = x.to(device)
            if args.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            samples = make_samples(batch, size, 1, False, False, device)
            net_module.samples = samples

            def net():
                with torch.no_grad():
                    network(x)

            def e2e():
                with torch.no_grad():
                    infer.predict(x, samples, rescale=False)
            fns = [timed(net, device)]
            if not args.no_end2end:
                fns.append(timed(e2e, device))
            if reference is not None:
                if ref_part == 'backbone':
                    def part():
                        with torch.no_grad():
                            ours_part(x)
                    fns.append(timed(part, device))
                fns.append(reference.runner(x))
            times = alternate_runs(fns, args.runs, args.warmup, args.pause)
            entry = dict(network=summarize(times[0]))
            entry['network']['images_per_s'] = batch / (entry['network']['median_ms'] / 1e3)
            if not args.no_end2end:
                entry['end2end'] = summarize(times[1])
                entry['end2end']['images_per_s'] = batch / (entry['end2end']['median_ms'] / 1e3)
            entry.update(peak_memory_mib(net, device))
            entry['process_peak_rss_mib'] = process_peak_rss_mib()
            result['latency'][str(batch)] = entry
            line = (f'   batch {batch}: network {entry["network"]["median_ms"]:.1f} ms '
                    f'(p25-p75 {entry["network"]["p25_ms"]:.1f}-{entry["network"]["p75_ms"]:.1f}'
                    f', {entry["network"]["images_per_s"]:.2f} img/s)')
            if 'end2end' in entry:
                line += f', end2end {entry["end2end"]["median_ms"]:.1f} ms'
            line += f', peak +{entry["peak_memory_mib"]:.0f} MiB'
            print(line, flush=True)
            if reference is not None:
                ours = summarize(times[-2] if ref_part == 'backbone' else times[0])
                ref = summarize(times[-1])
                result['compare']['batches'][str(batch)] = dict(
                    ours=ours, reference=ref, ratio=ours['median_ms'] / ref['median_ms'])
                print(f'   compare batch {batch} ({reference.scope}): ours '
                      f'{ours["median_ms"]:.1f} ms vs {reference.name} {ref["median_ms"]:.1f}'
                      f' ms: ratio {ours["median_ms"] / ref["median_ms"]:.3f}', flush=True)
    finally:
        if reference is not None:
            reference.close()
    return result


def print_table(results: List[dict]) -> None:
    """One markdown row per config and batch size."""
    print('\n' + FLOPS_NOTE + '; latency = median of the timed runs; "network" = '
          'model._forward (no NMS), "end2end" = model.predict (with NMS)')
    head = ('| config | input | params (M) | FLOPs (G) | batch | network ms | end2end ms | '
            'img/s | peak MiB | train ms | ours/ref |')
    print(head)
    print('|' + '---|' * (head.count('|') - 1))
    for r in results:
        for batch, e in r['latency'].items():
            cmp_ = r.get('compare', {}).get('batches', {}).get(batch)
            train = r.get('train', {}).get('median_ms')
            cells = [osp.basename(r['config']), f"{r['input_size'][0]}x{r['input_size'][1]}",
                     f"{r['params'] / 1e6:.2f}",
                     f"{r['flops'] / 1e9:.2f}" if 'flops' in r else '-', batch,
                     f"{e['network']['median_ms']:.1f}",
                     f"{e['end2end']['median_ms']:.1f}" if 'end2end' in e else '-',
                     f"{e['network']['images_per_s']:.2f}", f"{e['peak_memory_mib']:.0f}",
                     '-' if train is None else f'{train:.0f}',
                     '-' if cmp_ is None else f"{cmp_['ratio']:.3f}"]
            print('| ' + ' | '.join(str(c) for c in cells) + ' |')


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise SystemExit(f"--device={args.device!r} is not a device; valid choices: cpu, cuda, "
                         f"cuda:N")
    if device.type not in ('cpu', 'cuda'):
        raise SystemExit(f"--device={args.device!r}: valid choices: cpu, cuda, cuda:N")
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit(f'--device={args.device!r} but CUDA is not available here')
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    torch.set_flush_denormal(True)  # as training does (FlushDenormalHook); TF flushes too
    results = [benchmark_config(path, args, device, threads) for path in args.configs]
    print_table(results)
    out = dict(machine=machine_info(device), flops_note=FLOPS_NOTE,
               command=' '.join([osp.relpath(sys.argv[0], REPO)] + sys.argv[1:]),
               results=results)
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=1)
        print(f'wrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
