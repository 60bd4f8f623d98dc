"""Convert TF Model Garden SpineNet weights into a state dict for ``mmdet_spine``'s SpineNet.

The conversion has two stages, because TensorFlow and PyTorch live in separate environments
(TensorFlow never enters ``mmdet_spine``'s import path):

1. **TF stage** (run with the TensorFlow interpreter, e.g. ``.venv-tf/bin/python``): read a TF
   Model Garden checkpoint (``official/vision`` object-based, e.g. a RetinaNet-SpineNet
   ``ckpt-NNNN`` prefix or the directory holding it), restore it into a freshly built TF
   SpineNet of the same architecture, and write every backbone variable to an ``.npz`` named
   by its TF variable name (``conv2d_12/kernel``, ``bottleneck_block_3/batch_normalization_1/
   moving_mean``, ...). Restoring into a rebuilt model (rather than parsing the checkpoint's
   ``layer_with_weights-N`` keys) leaves the bookkeeping of TF's object graph to TF; the
   restore fails loudly if any backbone variable is missing from the checkpoint.
2. **Torch stage** (run with the project's interpreter, e.g. ``.venv/bin/python``): map those
   names onto ``mmdet_spine.models.backbones.SpineNet``'s parameters and buffers (kernels
   HWIO -> OIHW; BN gamma/beta/moving_mean/moving_variance -> weight/bias/running_mean/
   running_var) and ``torch.save`` a plain dict of tensors (loads with ``weights_only=True``).
   Every key and shape is checked against a freshly built SpineNet of the same arch.

The stage is picked from the file names: ``SRC -> *.npz`` is the TF stage, ``*.npz -> *.pth``
the torch stage, ``checkpoint -> *.pth`` runs both (the TF stage in a subprocess of
``--tf-python``, by default ``<repo>/.venv-tf/bin/python``).

Two commands::

    .venv-tf/bin/python tools/model_converters/spinenet_tf2mmdet.py \\
        retinanet-spinenet49/ckpt-231000 spinenet49_tf.npz --arch 49
    .venv/bin/python tools/model_converters/spinenet_tf2mmdet.py \\
        spinenet49_tf.npz spinenet49_tf.pth --arch 49

or one::

    .venv/bin/python tools/model_converters/spinenet_tf2mmdet.py \\
        retinanet-spinenet49/ckpt-231000 spinenet49_tf.pth --arch 49

The result feeds ``SpineNet(arch='49', ..., init_cfg=dict(type='Pretrained',
checkpoint='spinenet49_tf.pth'))``; build the model with the TF-compatible options (TF 'SAME'
padding, BN ``eps=1e-3``) to reproduce TF's numbers. ``--prefix backbone.`` writes keys for a
whole detector's ``load_state_dict(strict=False)`` instead.

The ``.npz`` written by ``tests/reference/tf_spinenet_export.py`` (random weights, used by the
parity test) has the same layout and converts the same way.

How TF names the layers: after ``tf_keras.backend.clear_session()`` Keras names top-level
layers ``conv2d``, ``conv2d_1``, ..., ``batch_normalization_N``, ``bottleneck_block_N``,
``residual_block_N`` in creation order (one counter per class), and the layers inside a block
restart at ``conv2d``. :func:`tf_layout` replays TF SpineNet's construction order (stem,
then per block spec the two parent resamplings and the block group, then the endpoint
convs) to know which name belongs to which part of the network; shapes are checked on both
sides. The TF2 legacy builder's weighted fusion (``official/legacy``) creates its
``block{i}_fusion{j}`` scalars outside Keras' tracking, so they are never in a checkpoint
(TF2 then uses their initial value 1.0); when an ``.npz`` carries them they are used.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import tempfile
from collections import OrderedDict

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_TF_PYTHON = osp.join(REPO, '.venv-tf', 'bin', 'python')

LEGACY_NUM_SPECS = 15  # official/legacy/detection has no 16th (level-2 output) block spec
STEM_CHANNELS = 64
NUM_STEM_BLOCKS = 2
META_KEY = '__meta__'


def spinenet_tables():
    """(arch settings, block specs, filters per level) of ``mmdet_spine``'s SpineNet: the
    same data as TF Model Garden's ``SCALING_MAP``/``SPINENET_BLOCK_SPECS``/``FILTER_SIZE_MAP``
    (the parity test holds them to it), kept in one place."""
    from mmdet_spine.models.backbones.spinenet import (SPINENET_ARCH_SETTINGS,
                                                       SPINENET_BLOCK_SPECS,
                                                       SPINENET_FILTER_SIZES)
    return SPINENET_ARCH_SETTINGS, SPINENET_BLOCK_SPECS, SPINENET_FILTER_SIZES


def check_arch(arch, valid):
    arch = str(arch)
    if arch not in valid:
        raise ValueError(f'arch={arch!r} is not a SpineNet architecture; valid choices: '
                         f"{', '.join(valid)}")
    return arch


# --------------------------------------------------------------------------------------------
# TF stage (needs TensorFlow + tf-models-official; imported lazily)
# --------------------------------------------------------------------------------------------

def tf_build_spinenet(arch, min_level=3, max_level=7, activation='relu', input_size=256,
                      legacy=False, weighted_fusion=False, fusion_value=None):
    """Build TF Model Garden's SpineNet with fresh Keras names (counters start at zero).

    Args:
        arch (str): A key of TF's ``SCALING_MAP`` ('49S', '49', '96', '143', '143L', '190';
            the legacy builder has no '143L').
        min_level, max_level (int): Output levels.
        activation (str): 'relu' or 'swish'.
        input_size (int | tuple): Static (H, W) of the Keras input.
        legacy (bool): Use ``official/legacy/detection`` (15 block specs) instead of
            ``official/vision``.
        weighted_fusion (bool): Legacy only: build with ``weighted_fusion=True``.
        fusion_value (callable, optional): ``fusion_value(name) -> float`` gives the initial
            value of each ``block{i}_fusion{j}`` scalar (default 1.0, TF's).

    Returns:
        tuple: (model, fusion) where ``fusion`` maps the fusion scalars' names to values.
    """
    import tensorflow as tf
    import tf_keras

    from official.legacy.detection.modeling.architecture import spinenet as legacy_spinenet
    from official.vision.modeling.backbones import spinenet as tf_spinenet

    if weighted_fusion and not legacy:
        raise ValueError('weighted_fusion=True needs legacy=True (official/vision builds '
                         'SpineNet with plain sums)')
    scaling = (legacy_spinenet if legacy else tf_spinenet).SCALING_MAP
    scaling = scaling[check_arch(arch, scaling)]
    hw = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    tf_keras.backend.clear_session()
    kwargs = dict(input_specs=tf_keras.layers.InputSpec(shape=[None, hw[0], hw[1], 3]),
                  min_level=min_level, max_level=max_level, activation=activation, **scaling)
    fusion = OrderedDict()
    if not legacy:
        return tf_spinenet.SpineNet(**kwargs), fusion

    class _Recorder:
        """Stands in for the legacy module's ``tf`` while it builds, recording the fusion
        scalars it creates (they are outside Keras' tracking)."""

        def __getattr__(self, name):
            return getattr(tf, name)

        @staticmethod
        def Variable(initial_value, name=None, **kw):  # noqa: N802 (TF's name)
            value = float(initial_value if fusion_value is None else fusion_value(name))
            fusion[name] = value
            return tf.Variable(value, name=name, **kw)

    class _WeightedSpineNet(legacy_spinenet.SpineNet):
        def _build_scale_permuted_network(self, net, input_width, weighted_fusion=False):
            return super()._build_scale_permuted_network(net, input_width, weighted_fusion=True)

    cls = _WeightedSpineNet if weighted_fusion else legacy_spinenet.SpineNet
    saved_tf = legacy_spinenet.tf
    legacy_spinenet.tf = _Recorder()
    try:
        model = cls(**kwargs)
    finally:
        legacy_spinenet.tf = saved_tf
    return model, fusion


def _creation_index(variable):
    """Creation rank of a TF variable: eager variables carry a global uid in their id."""
    uid = getattr(variable, '_unique_id', '')
    tail = str(uid).rsplit('_', 1)[-1]
    return int(tail) if tail.isdigit() else None


def tf_variables(model, fusion=None):
    """Every variable of ``model`` (and the fusion scalars) by TF name, in creation order."""
    variables = list(model.variables)
    ranks = [_creation_index(v) for v in variables]
    if all(r is not None for r in ranks):
        variables = [v for _, v in sorted(zip(ranks, variables), key=lambda t: t[0])]
    out = OrderedDict()
    for v in variables:
        name = v.name[:-2] if v.name.endswith(':0') else v.name
        if name in out:
            raise RuntimeError(f'duplicate TF variable name {name}')
        out[name] = v.numpy()
    for name, value in (fusion or {}).items():
        out[name] = np.asarray(value, dtype=np.float32)
    return out


def resolve_checkpoint(path):
    """A checkpoint prefix from a prefix or a directory (its latest, or its only, checkpoint)."""
    import tensorflow as tf

    if not osp.isdir(path):
        if not osp.exists(path + '.index'):
            raise FileNotFoundError(f'no TF checkpoint at {path} ({path}.index is missing)')
        return path
    latest = tf.train.latest_checkpoint(path)
    if latest:
        return latest
    prefixes = sorted(f[:-len('.index')] for f in os.listdir(path) if f.endswith('.index'))
    if len(prefixes) != 1:
        raise FileNotFoundError(f'{path}: expected one TF checkpoint (*.index) or a '
                                f"'checkpoint' file, found {prefixes or 'none'}")
    return osp.join(path, prefixes[0])


_STEM_KERNEL_SUFFIX = 'layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE'


def find_backbone_prefix(reader):
    """Object path of the SpineNet inside an object-based checkpoint (e.g. 'backbone/')."""
    shapes = reader.get_variable_to_shape_map()
    found = sorted(k[:-len(_STEM_KERNEL_SUFFIX)] for k, s in shapes.items()
                   if k.endswith(_STEM_KERNEL_SUFFIX) and list(s) == [7, 7, 3, STEM_CHANNELS])
    if not found:
        raise ValueError('no SpineNet found in the checkpoint: no 7x7x3x64 stem kernel at '
                         f'*/{_STEM_KERNEL_SUFFIX}; keys look like: '
                         f'{sorted(shapes)[:8]} (use --list to see them all)')
    return min(found, key=len)  # 'backbone/' rather than 'model/_backbone/'


def tf_read_checkpoint(path, model):
    """Restore ``model`` (a TF SpineNet) from a Model Garden checkpoint; return the prefix."""
    import tensorflow as tf

    path = resolve_checkpoint(path)
    reader = tf.train.load_checkpoint(path)
    prefix = find_backbone_prefix(reader)
    parts = [p for p in prefix.split('/') if p]
    node = model
    for part in reversed(parts[1:]):
        holder = tf.Module()
        setattr(holder, part, node)
        node = holder
    status = tf.train.Checkpoint(**{parts[0]: node}).read(path).expect_partial()
    status.assert_existing_objects_matched()
    # Every backbone variable must have been in the checkpoint, with its shape.
    shapes = reader.get_variable_to_shape_map()
    n_ckpt = sum(1 for k in shapes if k.startswith(prefix) and k.endswith('VARIABLE_VALUE'))
    if n_ckpt != len(model.variables):
        raise ValueError(f'checkpoint has {n_ckpt} variables under {prefix!r}, the TF SpineNet '
                         f'has {len(model.variables)}: wrong --arch or levels?')
    return prefix


def save_npz(path, arrays, meta, extra=None):
    payload = OrderedDict(arrays)
    payload['__order__'] = np.array(list(arrays), dtype=object).astype(str)
    payload[META_KEY] = np.array(json.dumps(meta))
    payload.update(extra or {})
    np.savez(path, **payload)


def run_tf_stage(args):
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import tensorflow as tf

    if args.list:
        reader = tf.train.load_checkpoint(resolve_checkpoint(args.src))
        for k, s in sorted(reader.get_variable_to_shape_map().items()):
            print(k, s)
        return
    src = resolve_checkpoint(args.src)
    model, fusion = tf_build_spinenet(args.arch, args.min_level, args.max_level,
                                      legacy=args.legacy, weighted_fusion=args.weighted_fusion)
    prefix = tf_read_checkpoint(src, model)
    arrays = tf_variables(model, fusion)
    meta = dict(arch=args.arch, min_level=args.min_level, max_level=args.max_level,
                legacy=args.legacy, weighted_fusion=args.weighted_fusion,
                source=osp.abspath(src), checkpoint_prefix=prefix,
                tensorflow=tf.__version__)
    save_npz(args.dst, arrays, meta)
    print(f'{len(arrays)} TF variables ({prefix}) -> {args.dst}')


# --------------------------------------------------------------------------------------------
# Layout: TF names <-> parts of the network (pure Python)
# --------------------------------------------------------------------------------------------

class _Namer:
    """Keras' per-class name counters: conv2d, conv2d_1, ...."""

    def __init__(self):
        self.counts = {}

    def __call__(self, base):
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        return base if n == 0 else f'{base}_{n}'


def _block_layers(tf_block, block_fn, in_channels, filters, part):
    """The conv/BN pairs inside one TF Bottleneck/ResidualBlock (creation order).

    Yields (part key, TF conv name, TF BN name, conv kernel shape HWIO).
    """
    inner = _Namer()
    out_channels = filters * 4 if block_fn == 'bottleneck' else filters
    if in_channels != out_channels:  # TF's use_projection (all SpineNet blocks use stride 1)
        yield (f'{part}.shortcut', f'{tf_block}/{inner("conv2d")}',
               f'{tf_block}/{inner("batch_normalization")}', (1, 1, in_channels, out_channels))
    if block_fn == 'bottleneck':
        convs = ((1, in_channels, filters), (3, filters, filters), (1, filters, filters * 4))
    else:
        convs = ((3, in_channels, filters), (3, filters, filters))
    for idx, (k, cin, cout) in enumerate(convs, 1):
        yield (f'{part}.conv{idx}', f'{tf_block}/{inner("conv2d")}',
               f'{tf_block}/{inner("batch_normalization")}', (k, k, cin, cout))


def block_channels(level, block_fn, scale, filter_sizes):
    filters = int(filter_sizes[level] * scale)
    return filters, (filters * 4 if block_fn == 'bottleneck' else filters)


def _arch(arch, legacy):
    archs, specs, filter_sizes = spinenet_tables()
    settings = archs[check_arch(arch, archs)]
    return settings, tuple(specs[:LEGACY_NUM_SPECS] if legacy else specs), filter_sizes


def tf_layout(arch, min_level=3, max_level=7, legacy=False):
    """Replay TF SpineNet's layer creation.

    Returns a list of ``(part, conv_name, bn_name, kernel_shape_hwio)``; ``part`` is a
    dotted key describing the role:

    - ``stem``: the 7x7 conv;
    - ``stem_blocks.{k}.{r}.{shortcut|conv1|conv2|conv3}``: stem block k, repeat r;
    - ``blocks.{i}.resample.{p}.{reduce|down|expand}``: block spec i (0-based), parent p:
      the 1x1 to alpha*C, the stride-2 3x3 (when the parent is finer), the 1x1 to the target
      width;
    - ``blocks.{i}.block.{r}.{...}``: the block group of spec i;
    - ``endpoints.{level}``: the endpoint 1x1 conv.

    Layers TF creates but leaves out of the model (the level-2 output block when
    ``min_level > 2``) are listed too; they are simply absent from a checkpoint.
    """
    settings, specs, filter_sizes = _arch(arch, legacy)
    scale, alpha = settings['filter_size_scale'], settings['resample_alpha']
    repeats = settings['block_repeats']
    top = _Namer()
    layout = []

    def conv_bn(part, shape):
        layout.append((part, top('conv2d'), top('batch_normalization'), shape))

    def block_group(prefix, block_fn, in_channels, filters):
        for r in range(repeats):
            tf_block = top(f'{block_fn}_block')
            layout.extend(_block_layers(tf_block, block_fn, in_channels, filters,
                                        f'{prefix}.{r}'))
            in_channels = filters * 4 if block_fn == 'bottleneck' else filters

    conv_bn('stem', (7, 7, 3, STEM_CHANNELS))
    filters2, out2 = block_channels(2, 'bottleneck', scale, filter_sizes)
    channels = STEM_CHANNELS
    net = []  # (level, block_fn, channels)
    for k in range(NUM_STEM_BLOCKS):
        block_group(f'stem_blocks.{k}', 'bottleneck', channels, filters2)
        channels = out2
        net.append((2, 'bottleneck', out2))
    for i, (level, block_fn, parents, _) in enumerate(specs):
        filters, out_channels = block_channels(level, block_fn, scale, filter_sizes)
        for p, parent in enumerate(parents):
            p_level, p_fn, p_channels = net[parent]
            narrow = int((p_channels / 4 if p_fn == 'bottleneck' else p_channels) * alpha)
            conv_bn(f'blocks.{i}.resample.{p}.reduce', (1, 1, p_channels, narrow))
            if p_level < level:
                conv_bn(f'blocks.{i}.resample.{p}.down', (3, 3, narrow, narrow))
            conv_bn(f'blocks.{i}.resample.{p}.expand', (1, 1, narrow, out_channels))
        block_group(f'blocks.{i}.block', block_fn, out_channels, filters)
        net.append((level, block_fn, out_channels))
    outputs = {s[0]: 2 + i for i, s in enumerate(specs) if s[3]}
    for level in range(min_level, max_level + 1):
        if level not in outputs:
            raise ValueError(f'min_level={min_level}/max_level={max_level}: no SpineNet '
                             f'output at level {level}')
        conv_bn(f'endpoints.{level}',
                (1, 1, net[outputs[level]][2], settings['endpoints_num_filters']))
    return layout


def fusion_inputs(arch, legacy=False):
    """Number of inputs TF fuses in each block spec (0-based): the two resampled parents plus,
    for an output block, every earlier unconsumed block of the same level and width."""
    settings, specs, filter_sizes = _arch(arch, legacy)
    scale = settings['filter_size_scale']
    nodes = [(2, block_channels(2, 'bottleneck', scale, filter_sizes)[1])] * NUM_STEM_BLOCKS
    out_degree = [0] * NUM_STEM_BLOCKS
    counts = {}
    for i, (level, block_fn, parents, is_output) in enumerate(specs):
        channels = block_channels(level, block_fn, scale, filter_sizes)[1]
        for p in parents:
            out_degree[p] += 1
        n = len(parents)
        if is_output:
            for j, node in enumerate(nodes):
                if out_degree[j] == 0 and node == (level, channels):
                    out_degree[j] += 1
                    n += 1
        counts[i] = n
        nodes.append((level, channels))
        out_degree.append(0)
    return counts


# --------------------------------------------------------------------------------------------
# Torch stage
# --------------------------------------------------------------------------------------------

_BN = (('gamma', 'weight'), ('beta', 'bias'), ('moving_mean', 'running_mean'),
       ('moving_variance', 'running_var'))


def ours_conv_bn(part):
    """``mmdet_spine`` SpineNet module names (conv, bn) of a :func:`tf_layout` part.

    Ours: ``stem_conv`` / ``init_blocks.<k>.<r>`` / ``blocks.<i+1>.resample.<p>.{conv_in,
    down_conv,conv_out}`` / ``blocks.<i+1>.layers.<r>`` / ``endpoints.<level>``; blocks hold
    ``conv<n>``/``bn<n>`` and the projection shortcut ``downsample.0``/``downsample.1``.
    """
    keys = part.split('.')
    if keys[0] == 'stem':
        return 'stem_conv.conv', 'stem_conv.bn'
    if keys[0] == 'endpoints':
        return f'endpoints.{keys[1]}.conv', f'endpoints.{keys[1]}.bn'
    if keys[0] == 'blocks' and keys[2] == 'resample':
        module = {'reduce': 'conv_in', 'down': 'down_conv', 'expand': 'conv_out'}[keys[4]]
        base = f'blocks.{int(keys[1]) + 1}.resample.{keys[3]}.{module}'
        return f'{base}.conv', f'{base}.bn'
    if keys[0] == 'stem_blocks':
        base, layer = f'init_blocks.{keys[1]}.{keys[2]}', keys[3]
    elif keys[0] == 'blocks' and keys[2] == 'block':
        base, layer = f'blocks.{int(keys[1]) + 1}.layers.{keys[3]}', keys[4]
    else:
        raise KeyError(part)
    if layer == 'shortcut':
        return f'{base}.downsample.0', f'{base}.downsample.1'
    n = layer[len('conv'):]
    return f'{base}.conv{n}', f'{base}.bn{n}'


def ours_fusion(block_index):
    """``mmdet_spine`` name of the fusion weights of block spec ``block_index`` (0-based, as
    in TF's ``block{i}_fusion{j}``)."""
    return f'blocks.{block_index + 1}.fusion.weight'


def convert_arrays(arrays, arch, min_level=3, max_level=7, legacy=False, weighted_fusion=False):
    """TF arrays (name -> ndarray) -> OrderedDict of torch tensors with our names.

    With ``weighted_fusion`` every built block gets fusion weights: the ``block{i}_fusion{j}``
    arrays when present, else TF2's constant 1.0 (see the module docstring).
    """
    import torch

    layout = tf_layout(arch, min_level, max_level, legacy)
    state = OrderedDict()
    used = set()
    for part, tf_conv, tf_bn, shape in layout:
        kernel = arrays.get(f'{tf_conv}/kernel')
        if kernel is None:
            continue  # built by TF but not part of the model (unused level-2 output)
        if tuple(kernel.shape) != tuple(shape):
            raise ValueError(f'{tf_conv}/kernel ({part}) has shape {tuple(kernel.shape)}, '
                             f'expected {tuple(shape)} for SpineNet-{arch}: wrong --arch?')
        conv, bn = ours_conv_bn(part)
        state[f'{conv}.weight'] = torch.from_numpy(
            np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        used.add(f'{tf_conv}/kernel')
        for tf_key, key in _BN:
            name = f'{tf_bn}/{tf_key}'
            if name not in arrays:
                raise KeyError(f'{name} ({part}) missing from the TF arrays')
            state[f'{bn}.{key}'] = torch.from_numpy(np.ascontiguousarray(arrays[name]))
            used.add(name)
        state[f'{bn}.num_batches_tracked'] = torch.tensor(0, dtype=torch.long)
    fusion = {}
    for name, value in arrays.items():
        if name.startswith('block') and '_fusion' in name:
            i, j = name[len('block'):].split('_fusion')
            fusion.setdefault(int(i), {})[int(j)] = float(value)
            used.add(name)
    if fusion and not weighted_fusion:
        raise ValueError('the TF arrays hold weighted-fusion scalars (block{i}_fusion{j}): '
                         'convert with --legacy --weighted-fusion')
    if weighted_fusion:
        counts = fusion_inputs(arch, legacy)
        built = {int(part.split('.')[1]) for part, conv, _, _ in layout
                 if part.startswith('blocks.') and f'{conv}/kernel' in arrays}
        for i in sorted(built):
            weights = fusion.get(i, {j: 1.0 for j in range(counts[i])})
            if sorted(weights) != list(range(counts[i])):
                raise ValueError(f'block{i}_fusion*: TF fuses {counts[i]} inputs in block spec '
                                 f'{i}, the arrays have {sorted(weights)}')
            state[ours_fusion(i)] = torch.tensor([weights[j] for j in range(counts[i])],
                                                 dtype=torch.float32)
    left = sorted(k for k in arrays if k not in used and not k.startswith('__'))
    if left:
        raise ValueError(f'{len(left)} TF variables were not mapped, e.g. {left[:5]}')
    return state


def load_npz(path):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop(META_KEY))) if META_KEY in arrays else {}
    return arrays, meta


def check_against_model(state, model_kwargs):
    """Compare keys and shapes with a freshly built ``mmdet_spine`` SpineNet."""
    import mmdet_spine  # noqa: F401  (registers the models)
    from mmdet_spine.models.backbones import SpineNet

    expected = SpineNet(**model_kwargs).state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        shapes = [(k, tuple(state[k].shape), tuple(expected[k].shape)) for k in wrong[:5]]
        raise ValueError(f'converted weights do not fit SpineNet({model_kwargs}): missing '
                         f'{missing[:5]}, unexpected {unexpected[:5]}, shape mismatch {shapes}')


def run_torch_stage(args, npz_path):
    import torch

    arrays, meta = load_npz(npz_path)
    for field in ('arch', 'min_level', 'max_level', 'legacy'):
        if field in meta and meta[field] != getattr(args, field):
            raise ValueError(f'{npz_path} was written for {field}={meta[field]!r}, '
                             f'got --{field.replace("_", "-")} {getattr(args, field)!r}')
    weighted = args.weighted_fusion or bool(meta.get('weighted_fusion'))
    state = convert_arrays(arrays, args.arch, args.min_level, args.max_level, args.legacy,
                           weighted)
    if not args.no_check:
        check_against_model(state, model_kwargs(args.arch, args.min_level, args.max_level,
                                                weighted))
    if args.prefix:
        state = OrderedDict((args.prefix + k, v) for k, v in state.items())
    torch.save(state, args.dst)
    print(f'{len(state)} tensors -> {args.dst}')


def model_kwargs(arch, min_level=3, max_level=7, weighted_fusion=False, activation='relu'):
    """Keyword arguments of a ``mmdet_spine`` SpineNet that computes what TF's does: TF 'SAME'
    padding, BN eps 1e-3 (TF's; momentum 0.99 is PyTorch's 0.01), TF's activation."""
    acts = {'relu': dict(type='ReLU'), 'swish': dict(type='Swish')}
    if activation not in acts:
        raise ValueError(f"activation={activation!r}; valid choices: {', '.join(acts)}")
    return dict(arch=arch, min_level=min_level, max_level=max_level, padding_mode='tf_same',
                norm_cfg=dict(type='BN', momentum=0.01, eps=1e-3, requires_grad=True),
                act_cfg=acts[activation], fusion='weighted' if weighted_fusion else 'sum')


# --------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert TF Model Garden SpineNet weights to mmdet_spine',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='See the module docstring for the two stages and examples.')
    parser.add_argument('src', help='TF checkpoint (prefix or directory) or .npz')
    parser.add_argument('dst', help='.npz (TF stage only) or .pth (torch state dict)')
    parser.add_argument('--arch', required=True, help="49S, 49, 96, 143, 143L or 190")
    parser.add_argument('--min-level', type=int, default=3)
    parser.add_argument('--max-level', type=int, default=7)
    parser.add_argument('--legacy', action='store_true',
                        help='official/legacy/detection SpineNet (15 block specs)')
    parser.add_argument('--weighted-fusion', action='store_true',
                        help='legacy SpineNet built with weighted fusion')
    parser.add_argument('--prefix', default='',
                        help="prepend to every key, e.g. 'backbone.' for a detector")
    parser.add_argument('--tf-python', default=DEFAULT_TF_PYTHON,
                        help='interpreter with TensorFlow for the TF stage (default: %(default)s)')
    parser.add_argument('--no-check', action='store_true',
                        help='do not compare with a freshly built mmdet_spine SpineNet')
    parser.add_argument('--list', action='store_true',
                        help='TF stage: print the checkpoint keys and shapes, write nothing')
    args = parser.parse_args(argv)
    if args.weighted_fusion and not args.legacy:
        parser.error('--weighted-fusion needs --legacy')
    return args


def main(argv=None):
    args = parse_args(argv)
    src_is_npz = args.src.endswith('.npz')
    if args.list or args.dst.endswith('.npz'):
        if src_is_npz:
            raise SystemExit('the TF stage reads a TF checkpoint, not an .npz')
        run_tf_stage(args)
        return
    if src_is_npz:
        run_torch_stage(args, args.src)
        return
    # checkpoint -> .pth: the TF stage in the TF interpreter, then the torch stage here.
    if not osp.exists(args.tf_python):
        raise SystemExit(f'--tf-python {args.tf_python} does not exist; create the TF '
                         'environment (requirements/tf_reference.txt) or run the TF stage '
                         'yourself (see --help)')
    with tempfile.TemporaryDirectory() as tmp:
        npz = osp.join(tmp, 'tf_arrays.npz')
        cmd = [args.tf_python, osp.abspath(__file__), args.src, npz, '--arch', args.arch,
               '--min-level', str(args.min_level), '--max-level', str(args.max_level)]
        cmd += ['--legacy'] * args.legacy + ['--weighted-fusion'] * args.weighted_fusion
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get('TF_CPP_MIN_LOG_LEVEL', '2'))
        subprocess.run(cmd, check=True, env=env)
        run_torch_stage(args, npz)


if __name__ == '__main__':
    main()
