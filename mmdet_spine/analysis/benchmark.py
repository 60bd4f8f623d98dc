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
- ``train step`` (``--train``; ``--train-only`` skips the inference measurements): forward +
  losses (anchor assignment included) + backward + SGD step on random boxes (3 per image),
  eagerly.

With ``--compare`` the reference implementation runs in a worker process beside this one, its
runs alternating with ours (ours, reference, ours, ...) so that load from other processes hits
both alike. Every comparison is a *pair* of one of our measurements and one of the
reference's **in the same mode** (``SAME_MODE``; the tool refuses any other pair), printed
one line each with the ratio ours/reference:

- EfficientDet configs: effdet's ``tf_efficientdet_dX`` (random init), whole network, same
  input, in ``effdet_latency.py`` (beside this file). Ours eager (with whatever deploy
  options: ``--fuse-conv-bn``, ``--channels-last``) pairs with effdet eager as shipped; ours
  ``--compile`` pairs with effdet compiled the same way (``torch.compile`` with inductor
  freezing, ``latency_worker.compile_for_inference``) and channels-last. effdet imports
  torchvision, which this project never installs or imports, so only that worker imports it
  (where torchvision cannot load, ``$MMDET_SPINE_EFFDET_PRELUDE`` names a module that imports
  effdet without it; the tests use their stand-in) and this process never sees either;
- SpineNet configs: the backbone against TF Model Garden's ``SpineNet`` (inference), which
  runs in a TensorFlow interpreter (``--tf-python``, else ``$MMDET_SPINE_TF_PYTHON``, else a
  checkout's ``.venv-tf``) as a subprocess (``tf_spinenet_latency.py``); skipped with a note
  if there is none. TF's standard graph mode ``tf.function`` pairs with ours eager and ours
  compiled; with ``--compile`` TF's XLA (``tf.function(jit_compile=True)``) is timed too, in
  the same worker, and pairs with ours compiled (runs: ours, tf.function, XLA, ours, ...).

With ``--train --compare`` the reference's training step alternates with ours (ours runs
eagerly; each pair records whether the reference's anchor labeler ran inside its step):

- EfficientDet configs: effdet's ``DetBenchTrain`` with its anchor labeler (forward, labels,
  loss, backward, SGD) on our step's ground truths (``make_samples``: 3 boxes per image),
  eager;
- RetinaNet configs with a SpineNet backbone: TF Model Garden's ``RetinaNetTask`` train step
  (``retinanet_spinenet_coco`` adjusted to the config; ``tf_retinanet_train_latency.py``),
  ``tf.function``, once with TF's ``AnchorLabeler`` inside the step (as ours) and once on
  targets labelled beforehand (as TF's input pipeline does).

``machine`` in the JSON records the CPU, its instruction set (``/proc/cpuinfo`` flags, torch's
``get_cpu_capability()``, an ``isa`` summary such as ``AVX2+FMA`` or
``AVX-512 (+VNNI, +BF16)``) and the library versions.

JSON of the comparisons (``results[i]``): ``compare`` (inference) and ``train.compare``
(``--train --compare``) are ``{reference, scope, reference_params, pairs}`` (or
``{skipped: reason}``); each pair is ``{batch, ours: {mode, part, options, median_ms, p25_ms,
p75_ms, min_ms, max_ms, runs}, reference: {name, run, mode, options, [labeler_in_step,]
median_ms, ...}, ratio}`` with ratio = our median / the reference's and ``(ours.mode,
reference.mode)`` in ``SAME_MODE``.

Usage::

    python tools/analysis_tools/benchmark.py CONFIG [CONFIG ...] [--device cpu|cuda]
        [--input-size 640 | 512x768] [--batch-sizes 1 8] [--runs 10] [--warmup 2]
        [--fuse-conv-bn] [--channels-last] [--compile] [--train | --train-only]
        [--train-batch 2] [--no-end2end] [--no-flops] [--compare [--reference NAME]]
        [--tf-python PATH] [--pause 1.0] [--threads N] [--json out.json]
        [--cfg-options model.bbox_head.num_classes=91]
"""
import argparse
import contextlib
import copy
import gc
import json
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

from ..engine.cli import load_config as cli_load_config
from ..engine.cli import parse_size
from ..engine.inference_model import build_inference_model
from ..errors import UserError
from .complexity import NetworkForward, count_parameters, flop_analysis
from .references import latency_worker

#: The reference workers: scripts that other interpreters (TF's, effdet's) run by path.
REFERENCES = osp.join(osp.dirname(osp.abspath(__file__)), 'references')
#: A source checkout holding this package (its ``.venv-tf``), if it is one.
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TF_WORKER = osp.join(REFERENCES, 'tf_spinenet_latency.py')
TF_TRAIN_WORKER = osp.join(REFERENCES, 'tf_retinanet_train_latency.py')
# effdet (and its torchvision import) only ever runs in this worker process, never here
EFFDET_WORKER = osp.join(REFERENCES, 'effdet_latency.py')
FLOPS_NOTE = 'FLOPs count one multiply-add as one FLOP (as the SpineNet / EfficientDet papers)'
#: (our mode, the reference's mode) of every pair the tool may compare: eager with eager
#: (effdet as shipped) or with TF's standard graph mode; compiled with compiled (effdet through
#: the same inductor compile), with TF's graph mode and with TF's XLA.
SAME_MODE = frozenset({('eager', 'eager'), ('compiled', 'compiled'), ('eager', 'tf.function'),
                       ('compiled', 'tf.function'), ('compiled', 'tf.jit_compile')})
#: /proc/cpuinfo flags recorded in ``machine['cpu_flags']`` (those present).
ISA_FLAGS = ('avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni',
             'avx512_bf16', 'avx512_fp16', 'avx_vnni', 'amx_tile', 'amx_bf16', 'amx_int8',
             'asimd', 'sve', 'sve2', 'bf16', 'i8mm')


def default_tf_python() -> str:
    """TF's interpreter: ``$MMDET_SPINE_TF_PYTHON``, else a ``.venv-tf`` in the current
    directory, else the one of the checkout this package lives in (``make setup-tf``)."""
    env = os.environ.get('MMDET_SPINE_TF_PYTHON')
    if env:
        return env
    candidates = [osp.join(os.getcwd(), '.venv-tf', 'bin', 'python'),
                  osp.join(CHECKOUT, '.venv-tf', 'bin', 'python')]
    return next((c for c in candidates if osp.isfile(c)), candidates[-1])


#: The effdet worker compiles effdet with this same function (``--compile --compare``).
compile_for_inference = latency_worker.compile_for_inference


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
    p.add_argument('--train-only', action='store_true',
                   help='time only the training step (with --compare: against the '
                        "reference's), no inference")
    p.add_argument('--train-batch', type=positive_int, default=2,
                   help='batch of the training step (default 2)')
    p.add_argument('--compare', action='store_true',
                   help='time the reference implementation too, in the mode of ours, '
                        'alternating runs (with --train: its training step too)')
    p.add_argument('--reference', help='effdet model name for --compare (default: matched '
                   'from the config, e.g. tf_efficientdet_d0)')
    p.add_argument('--tf-python', default=default_tf_python(),
                   help='python of the TF Model Garden environment (default: '
                        '$MMDET_SPINE_TF_PYTHON, else .venv-tf here or in the checkout)')
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


def check_same_mode(ours_mode: str, reference_mode: str) -> None:
    """Refuse a pair whose two sides do not run in the same mode (``SAME_MODE``)."""
    if (ours_mode, reference_mode) not in SAME_MODE:
        allowed = ', '.join(f'{o}/{r}' for o, r in sorted(SAME_MODE))
        raise ValueError(f'compare pair ours={ours_mode!r} vs reference={reference_mode!r} is '
                         f'not a same-mode pair; allowed (ours/reference): {allowed}')


def make_pair(batch: int, ours: dict, ours_times: Sequence[float], reference: dict,
              reference_times: Sequence[float]) -> dict:
    """One compared pair, its modes checked against ``SAME_MODE``.

    Args:
        batch (int): Images per call.
        ours (dict): Our side: ``mode`` ('eager' | 'compiled'), ``options``, ``part``.
        ours_times (list[float]): Our timed runs, seconds.
        reference (dict): The reference's side: ``name``, ``run``, ``mode``, ``options``...
        reference_times (list[float]): Its timed runs, seconds.

    Returns:
        dict: ``{batch, ours: {mode, options, ..., median_ms, ...}, reference: {name, mode,
        ..., median_ms, ...}, ratio}`` with ratio = our median / the reference's.
    """
    check_same_mode(ours['mode'], reference['mode'])
    ours = dict(ours, **summarize(ours_times))
    reference = dict(reference, **summarize(reference_times))
    return dict(batch=batch, ours=ours, reference=reference,
                ratio=ours['median_ms'] / reference['median_ms'])


def pair_line(pair: dict, what: str) -> str:
    """A pair as one printed line."""
    ours, ref = pair['ours'], pair['reference']
    opts = '+'.join(k for k, v in ours.get('options', {}).items() if v is True)
    labeler = ref.get('labeler_in_step')
    ref_mode = ref['mode'] + ('' if labeler is None else
                              ', labeler in step' if labeler else ', targets precomputed')
    return (f'   compare {what} batch {pair["batch"]}: ours {ours["mode"]}'
            f'{f" ({opts})" if opts else ""} {ours["median_ms"]:.1f} ms vs {ref["name"]} '
            f'[{ref_mode}] {ref["median_ms"]:.1f} ms: ratio {pair["ratio"]:.3f}')


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
    from mmengine.registry import init_default_scope
    cfg = cli_load_config(path, cfg_options)
    from .. import classification, datasets, engine, models, zoo  # noqa: F401  (registries)
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


def count_flops(model: nn.Module, size: tuple, device: torch.device) -> dict:
    """FLOPs (multiply-adds) of the network forward on one ``size`` image, by operator."""
    x = torch.zeros(1, 3, *size, device=device)
    return flop_analysis(model, x, make_samples(1, size, 1, False, False, device))


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

    The worker (``latency_worker.py`` protocol) prints ``{"ready": 1, "params": ..., "name":
    ..., "runs": {RUN: {"mode": ..., ...}}}`` once built, then answers ``{"batch": B}`` (new
    input, optionally with ground truths; untimed first runs) and ``{"run": RUN}`` ->
    ``{"seconds": s}``. Running it apart keeps its imports (TensorFlow; effdet, which needs a
    torchvision stand-in) out of this process. Replies are read when needed, so the worker
    builds its model (and, with ``prepare``, its first input: tracing, compiling) while this
    process builds and compiles ours.

    Args:
        cmd (list[str]): The worker's command line (with ``--serve``).
        scope (str): What the reference computes, for the report.
    """

    def __init__(self, cmd: List[str], scope: str):
        self.scope = scope
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.worker = cmd[1]
        self._hello = None
        self._pending = 0  # replies to prepared inputs, not read yet
        self.batch = None

    @property
    def hello(self) -> dict:
        """The worker's ready line (waits for it)."""
        if self._hello is None:
            self._hello = self._read()
        return self._hello

    @property
    def name(self) -> str:
        return self.hello['name']

    @property
    def params(self) -> int:
        return self.hello['params']

    @property
    def runs(self) -> Dict[str, dict]:
        """Run name -> ``{mode, options, ...}`` as the worker reports it."""
        return self.hello['runs']

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f'the reference worker exited ({self.proc.wait()}); run '
                               f'{self.worker} by hand to see why')
        return json.loads(line)

    def _send(self, msg: dict) -> None:
        self.proc.stdin.write(json.dumps(msg) + '\n')
        self.proc.stdin.flush()

    def wait(self) -> None:
        """Wait until the worker has built every prepared input (it is idle after), so
        that its building never overlaps a timed run of ours."""
        self.hello  # noqa: B018 (the ready line comes first)
        for _ in range(self._pending):
            self._read()
        self._pending = 0

    def _ask(self, **msg) -> dict:
        self._send(msg)
        self.wait()
        return self._read()

    def prepare(self, batch: int, targets: Optional[list] = None) -> None:
        """Ask for a new input of ``batch`` now (the worker builds it and runs every run
        once, untimed) and read the reply when the first run is timed."""
        self._send(dict(batch=batch) if targets is None else dict(batch=batch,
                                                                  targets=targets))
        self._pending += 1
        self.batch = batch

    def describe(self, run: str) -> dict:
        """The reference side of a pair: name, run, mode, options (as the worker says)."""
        return dict(name=self.name, run=run, **self.runs[run])

    def runner(self, batch: int, run: str, targets: Optional[list] = None
               ) -> Callable[[], float]:
        """A call of ``run`` on a batch of ``batch`` (with ``targets``, training workers)."""

        def fn():
            if self.batch != batch:
                self.prepare(batch, targets)
            return self._ask(run=run)['seconds']
        return fn

    def close(self):
        with contextlib.suppress(Exception):
            self.proc.stdin.write(json.dumps(dict(quit=1)) + '\n')
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)


def effdet_reference(name: str, size: tuple, num_classes: int, device: torch.device,
                     threads: int, compiled: bool = False, train: bool = False
                     ) -> WorkerReference:
    """effdet ``name`` (random init) at ``size``: network outputs in eval mode, like ours, as
    shipped (eager) or ``compiled`` (inductor freezing, channels-last); or with ``train``
    ``DetBenchTrain``'s training step, labeler included."""
    cmd = [sys.executable, EFFDET_WORKER, '--serve', '--name', name, '--size', str(size[0]),
           str(size[1]), '--num-classes', str(num_classes), '--device', str(device),
           '--threads', str(threads)]
    if compiled:
        cmd += ['--compile', '--channels-last']
    if train:
        cmd += ['--train']
        return WorkerReference(cmd, 'training step (DetBenchTrain: forward, anchor labels, '
                                    'loss; backward, SGD)')
    return WorkerReference(cmd, 'network (backbone + BiFPN + class/box nets, no NMS)')


def tf_activation(act_cfg: dict) -> str:
    """TF's name of an mmcv activation config ('relu' or 'swish')."""
    act = (act_cfg or {}).get('type', 'ReLU')
    return 'swish' if act.lower() in ('swish', 'silu') else 'relu'


def tf_spinenet_reference(python: str, backbone_cfg: dict, size: tuple, threads: int,
                          modes: Sequence[str] = ('tf.function',)) -> WorkerReference:
    """TF Model Garden ``SpineNet`` in ``.venv-tf``, timing inference in each of ``modes``
    ('tf.function', 'tf.jit_compile')."""
    cmd = [python, TF_WORKER, '--serve', '--arch', str(backbone_cfg.get('arch', '49')),
           '--min-level', str(backbone_cfg.get('min_level', 3)),
           '--max-level', str(backbone_cfg.get('max_level', 7)),
           '--activation', tf_activation(backbone_cfg.get('act_cfg')),
           '--size', f'{size[0]}x{size[1]}', '--threads', str(threads), '--modes', *modes]
    return WorkerReference(cmd, 'backbone only (P3-P7 features), inference')


def tf_retinanet_train_reference(python: str, cfg, size: tuple, num_classes: int,
                                 threads: int) -> WorkerReference:
    """TF Model Garden's ``RetinaNetTask`` training step for a RetinaNet-SpineNet config:
    TF's ``retinanet_spinenet_coco`` with our backbone arch, levels, head and anchors."""
    backbone, head = cfg.model.backbone, cfg.model.bbox_head
    anchors = head.get('anchor_generator', {})
    cmd = [python, TF_TRAIN_WORKER, '--serve', '--arch', str(backbone.get('arch', '49')),
           '--min-level', str(backbone.get('min_level', 3)),
           '--max-level', str(backbone.get('max_level', 7)),
           '--activation', tf_activation(backbone.get('act_cfg')),
           '--drop-path', str(backbone.get('drop_path_rate', 0.0)),
           '--size', f'{size[0]}x{size[1]}', '--num-classes', str(num_classes),
           '--head-convs', str(head.get('stacked_convs', 4)),
           '--head-filters', str(head.get('feat_channels', 256)),
           '--num-scales', str(anchors.get('scales_per_octave', 3)),
           '--aspect-ratios', *[str(r) for r in anchors.get('ratios', [0.5, 1.0, 2.0])],
           '--anchor-size', str(anchors.get('octave_base_scale', 3)),
           '--threads', str(threads)]
    return WorkerReference(cmd, 'training step (RetinaNetTask.train_step: forward, '
                                'build_losses, gradients, SGD; tf.function)')


def _tf_python_missing(args, device) -> Optional[str]:
    if device.type != 'cpu':
        return 'the TF references run on the CPU only'
    if not osp.exists(args.tf_python):
        return f'TF environment not found at {args.tf_python} (see requirements/' \
               f'tf_reference.txt)'
    return None


def build_reference(cfg, args, size, model, device, threads):
    """(reference, the part of our model it compares with) or (None, reason).

    The reference runs in the mode of ours: effdet compiled when ``--compile``, else as
    shipped; TF SpineNet in ``tf.function`` and, when ``--compile``, also with XLA.
    """
    name = args.reference or effdet_reference_name(cfg)
    if name:
        return effdet_reference(name, size, num_classes_of(model), device, threads,
                                compiled=args.compile), 'network'
    backbone = cfg.model.get('backbone', {})
    if backbone.get('type') == 'SpineNet':
        missing = _tf_python_missing(args, device)
        if missing:
            return None, missing
        modes = ('tf.function', 'tf.jit_compile') if args.compile else ('tf.function',)
        return tf_spinenet_reference(args.tf_python, backbone, size, threads, modes), 'backbone'
    return None, (f'no reference implementation for {cfg.model.get("type")} with '
                  f'{backbone.get("type")}')


def build_train_reference(cfg, args, size, model, device, threads):
    """(reference training step, None) or (None, reason): effdet's ``DetBenchTrain`` for
    EfficientDet configs, TF's ``RetinaNetTask`` for RetinaNet + SpineNet configs."""
    name = args.reference or effdet_reference_name(cfg)
    if name:
        return effdet_reference(name, size, num_classes_of(model), device, threads,
                                train=True), None
    m = cfg.model
    backbone = m.get('backbone', {})
    if (m.get('type') == 'RetinaNet' and backbone.get('type') == 'SpineNet'
            and m.get('neck') is None):
        missing = _tf_python_missing(args, device)
        if missing:
            return None, missing
        stride = 2 ** backbone.get('max_level', 7)
        if size[0] % stride or size[1] % stride:
            return None, (f'TF RetinaNet needs an input size divisible by {stride} (2^max_level'
                          f'), not {size[0]}x{size[1]}')
        return tf_retinanet_train_reference(args.tf_python, cfg, size, num_classes_of(model),
                                            threads), None
    return None, (f'no reference training step for {m.get("type")} with '
                  f'{backbone.get("type")}')


# --------------------------------------------------------------------------- benchmark
def isa_summary(flags: Sequence[str], machine: str = '') -> str:
    """The vector ISA of a CPU in a few words from its /proc/cpuinfo flags, e.g. 'AVX2+FMA',
    'AVX-512 (+VNNI, +BF16, +AMX)', 'NEON'; ``machine`` (e.g. 'aarch64') when none is known."""
    flags = set(flags)
    if 'avx512f' in flags:
        extras = [name for flag, name in (('avx512_vnni', '+VNNI'), ('avx512_bf16', '+BF16'),
                                          ('avx512_fp16', '+FP16'), ('amx_tile', '+AMX'))
                  if flag in flags]
        return 'AVX-512' + (f' ({", ".join(extras)})' if extras else '')
    if 'avx2' in flags:
        return 'AVX2' + ('+FMA' if 'fma' in flags else '') + (
            ' (+AVX-VNNI)' if 'avx_vnni' in flags else '')
    if 'avx' in flags:
        return 'AVX'
    if 'sve' in flags:
        return 'SVE' + ('2' if 'sve2' in flags else '')
    if 'asimd' in flags:
        return 'NEON'
    return machine or 'unknown'


def cpu_isa(cpuinfo: str = '/proc/cpuinfo') -> dict:
    """``cpu_flags`` (the ``ISA_FLAGS`` present in the first CPU's ``flags`` / ``Features``
    line), ``cpu_capability`` (``torch.backends.cpu.get_cpu_capability()``: the kernels torch
    dispatches to) and ``isa`` (``isa_summary``)."""
    flags = []
    with contextlib.suppress(OSError):
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(':')
                if key.strip() in ('flags', 'Features'):
                    flags = value.split()
                    break
    present = [flag for flag in ISA_FLAGS if flag in flags]
    return dict(cpu_flags=present, cpu_capability=torch.backends.cpu.get_cpu_capability(),
                isa=isa_summary(present, platform.machine()))


def machine_info(device: torch.device) -> dict:
    """CPU / GPU model, instruction set, core count, library versions."""
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
    info = dict(cpu=cpu, **cpu_isa(), nproc=os.cpu_count(), torch_threads=torch.get_num_threads(),
                python=platform.python_version(), torch=torch.__version__,
                mmcv=mmcv.__version__, mmdet=mmdet.__version__, mmengine=mmengine.__version__,
                device=str(device))
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    return info


def machine_line(info: dict) -> str:
    """The header line: CPU, ISA, threads, versions."""
    gpu = f', GPU {info["gpu"]}' if 'gpu' in info else ''
    return (f'machine: {info["cpu"]} ({info["nproc"]} CPUs), ISA {info["isa"]} (torch '
            f'capability {info["cpu_capability"]}; flags {" ".join(info["cpu_flags"]) or "-"})'
            f'{gpu}, {info["torch_threads"]} torch threads, torch {info["torch"]}, '
            f'mmdet {info["mmdet"]}')


def sample_targets(samples) -> List[dict]:
    """Ground truths of ``make_samples`` for a reference worker: per image ``boxes_xyxy``
    (input pixels) and 0-based ``labels`` (see ``latency_worker.py``)."""
    return [dict(boxes_xyxy=s.gt_instances.bboxes.cpu().tolist(),
                 labels=s.gt_instances.labels.cpu().tolist()) for s in samples]


#: The optimiser of every timed training step (ours and the references').
TRAIN_SGD = dict(lr=1e-5, momentum=0.9)


def train_step(model: nn.Module, cfg, size: tuple, batch: int, runs: int, warmup: int,
               device: torch.device, channels_last: bool,
               reference: Optional[WorkerReference] = None, pause: float = 0.0) -> dict:
    """Median time and peak memory of forward + loss + backward + SGD step (eager).

    With ``reference`` (a training-step worker), its runs alternate with ours on the same
    ground truths and ``compare`` holds one pair per reference run.
    """
    model = copy.deepcopy(model).train()
    if channels_last:  # as training does (ChannelsLastHook): weights NHWC, inputs hooked
        from mmdet_spine.models.utils import convert_to_channels_last
        convert_to_channels_last(model)
    optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], **TRAIN_SGD)
    with_masks = bool(getattr(getattr(model, 'roi_head', None), 'with_mask', False))
    x = torch.randn(batch, 3, *size, device=device)
    samples = make_samples(batch, size, num_classes_of(model), True, with_masks, device)
    targets = sample_targets(samples)
    if reference is not None:
        reference.prepare(batch, targets)  # TF traces its steps while ours warms up

    def step():
        optim.zero_grad(set_to_none=True)
        loss, _ = model.parse_losses(model.loss(x, samples))
        loss.backward()
        optim.step()
    fns = [timed(step, device)]
    ref_runs = list(reference.runs) if reference is not None else []
    fns += [reference.runner(batch, run, targets) for run in ref_runs]
    if reference is not None:
        reference.wait()
    times = alternate_runs(fns, runs, warmup, pause)
    ours = dict(mode='eager', part='training step (forward, losses incl. anchor assignment, '
                'backward, SGD)', options=dict(channels_last=channels_last, sgd=TRAIN_SGD))
    out = dict(batch=batch, mode=ours['mode'], options=ours['options'], **summarize(times[0]),
               **peak_memory_mib(step, device), images_per_s=batch / statistics.median(times[0]))
    if reference is not None:
        out['compare'] = dict(
            reference=reference.name, scope=reference.scope, reference_params=reference.params,
            pairs=[make_pair(batch, ours, times[0], reference.describe(run), t)
                   for run, t in zip(ref_runs, times[1:])])
    return out


def benchmark_config(path: str, args, device: torch.device, threads: int) -> dict:
    """Every measurement of one config (see the module docstring)."""
    cfg = load_config(path, args.cfg_options)
    size = tuple(args.input_size or default_input_size(cfg))
    model = build_inference_model(cfg, args.checkpoint).to(device)
    result = dict(config=path, model=cfg.model.get('type'),
                  backbone=cfg.model.get('backbone', {}).get('type'), input_size=list(size),
                  num_classes=num_classes_of(model),
                  params=count_parameters(model),
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
    if args.train or args.train_only:
        train_ref, why = None, None
        if args.compare:
            train_ref, why = build_train_reference(cfg, args, size, model, device, threads)
        try:
            result['train'] = train_step(model, cfg, size, args.train_batch, args.runs,
                                         args.warmup, device, args.channels_last, train_ref,
                                         args.pause if train_ref is not None else 0.0)
        finally:
            if train_ref is not None:
                train_ref.close()
        t = result['train']
        print(f'   train step batch {t["batch"]} ({t["mode"]}): {t["median_ms"]:.1f} ms '
              f'(p25-p75 {t["p25_ms"]:.1f}-{t["p75_ms"]:.1f}), peak +{t["peak_memory_mib"]:.0f}'
              f' MiB', flush=True)
        if why is not None:
            t['compare'] = dict(skipped=why)
            print(f'   compare train step: skipped ({why})', flush=True)
        for pair in t.get('compare', {}).get('pairs', []):
            print(pair_line(pair, 'train step'), flush=True)
    if args.train_only:
        return result

    reference, ref_part = None, None
    if args.compare:  # started first: it builds (compiles) its model while we do ours
        reference, ref_part = build_reference(cfg, args, size, model, device, threads)
        if reference is not None:
            reference.prepare(args.batch_sizes[0])
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

    ours_side = dict(mode='compiled' if args.compile else 'eager', part='network',
                     options=dict(fuse_conv_bn=args.fuse_conv_bn,
                                  channels_last=args.channels_last,
                                  inductor_freezing=args.compile))
    if args.compare:
        if reference is None:
            result['compare'] = dict(skipped=ref_part)
            print(f'   compare: skipped ({ref_part})', flush=True)
        else:
            result['compare'] = dict(reference=reference.name, scope=reference.scope,
                                     reference_params=reference.params, pairs=[])
            if ref_part == 'backbone':
                ours_side['part'] = 'backbone'
                ours_part = infer.backbone
                if args.compile:
                    ours_part = compile_for_inference(ours_part)
                result['compare']['params'] = count_parameters(ours_part)
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
                ours_index = 0
                if ref_part == 'backbone':
                    def part():
                        with torch.no_grad():
                            ours_part(x)
                    ours_index = len(fns)
                    fns.append(timed(part, device))
                ref_index = len(fns)
                fns += [reference.runner(batch, run) for run in reference.runs]
            if args.compile:  # compiling for this batch's shapes is never timed (any --warmup)
                net()
                if reference is not None and ref_part == 'backbone':
                    part()
            if reference is not None:
                reference.wait()
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
                for i, run in enumerate(reference.runs):
                    pair = make_pair(batch, ours_side, times[ours_index], reference.describe(run),
                                     times[ref_index + i])
                    result['compare']['pairs'].append(pair)
                    print(pair_line(pair, ref_part), flush=True)
    finally:
        if reference is not None:
            reference.close()
    return result


def print_table(results: List[dict]) -> None:
    """One markdown row per config and batch size (``--train-only``: per config; ours/ref is
    then the training step's first pair)."""
    print('\n' + FLOPS_NOTE + '; latency = median of the timed runs; "network" = '
          'model._forward (no NMS), "end2end" = model.predict (with NMS); ours/ref = the '
          "batch's first compared pair (every pair is printed above)")
    head = ('| config | input | params (M) | FLOPs (G) | batch | network ms | end2end ms | '
            'img/s | peak MiB | train ms | ours/ref |')
    print(head)
    print('|' + '---|' * (head.count('|') - 1))
    for r in results:
        for batch, e in r.get('latency', {}).items():
            cmp_ = next((p for p in r.get('compare', {}).get('pairs', [])
                         if str(p['batch']) == batch), None)
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
        if 'latency' not in r and 'train' in r:  # --train-only: the train step's row
            t = r['train']
            pair = next(iter(t.get('compare', {}).get('pairs', [])), None)
            cells = [osp.basename(r['config']), f"{r['input_size'][0]}x{r['input_size'][1]}",
                     f"{r['params'] / 1e6:.2f}",
                     f"{r['flops'] / 1e9:.2f}" if 'flops' in r else '-', t['batch'], '-', '-',
                     f"{t['images_per_s']:.2f}", f"{t['peak_memory_mib']:.0f}",
                     f"{t['median_ms']:.0f}", '-' if pair is None else f"{pair['ratio']:.3f}"]
            print('| ' + ' | '.join(str(c) for c in cells) + ' |')


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise UserError(f"--device={args.device!r} is not a device; valid choices: cpu, cuda, "
                        f"cuda:N")
    if device.type not in ('cpu', 'cuda'):
        raise UserError(f"--device={args.device!r}: valid choices: cpu, cuda, cuda:N")
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise UserError(f'--device={args.device!r} but CUDA is not available here')
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    torch.set_flush_denormal(True)  # as training does (FlushDenormalHook); TF flushes too
    machine = machine_info(device)
    print(machine_line(machine), flush=True)
    results = [benchmark_config(path, args, device, threads) for path in args.configs]
    print_table(results)
    out = dict(machine=machine, flops_note=FLOPS_NOTE,
               command=' '.join([osp.basename(sys.argv[0])] + sys.argv[1:]),
               results=results)
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=1)
        print(f'wrote {args.json}')
    return 0


if __name__ == '__main__':
    from ..engine.cli import run_cli
    run_cli(main)
