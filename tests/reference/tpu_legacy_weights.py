"""Deterministic random weights for legacy tensorflow/tpu checkpoints (stdlib + numpy only).

Both sides of the legacy-TPU parity tests use this: ``tpu_legacy_record.py`` (which ran the
tensorflow/tpu code itself and recorded its outputs in ``tests/data/tpu_legacy/``) assigned
these values to the TPU graph's variables, and the tests regenerate them from the recorded
names, shapes and seed, so the recorded files need not hold the weights.

Values by variable (name's last component): BN gamma ~ U(0.7, 1.3), beta ~ N(0, 0.1),
moving_mean ~ N(0, 0.1), moving_variance ~ U(0.7, 1.4); biases ~ N(0, 0.1); kernels ~
N(0, g / sqrt(fan_in)) (g = 1.4 for head towers, 0.3 for box predictors, else 1), which keeps
outputs O(1) in inference mode while a swapped or ignored tensor still shows.
"""
import numpy as np

_KERNELS = ('kernel', 'depthwise_kernel', 'pointwise_kernel')


def _gain(name):
    if 'box-predict' in name or 'rpn-box' in name:
        return 0.3
    if any(t in name for t in ('class_net/class-', 'box_net/box-', 'rpn_head/rpn/',
                               'mask-conv', 'fast_rcnn_head/conv')):
        return 1.4
    return 1.0


def _fan_in(name, shape):
    leaf = name.rsplit('/', 1)[-1]
    if leaf == 'depthwise_kernel':
        return int(shape[0] * shape[1])
    if 'conv5-mask' in name:  # conv2d_transpose kernel: (kh, kw, out, in)
        return int(shape[0] * shape[1] * shape[3]) // 4
    return int(np.prod(shape[:-1]))


def random_weights(shapes, seed=0):
    """``{name: float32 array}`` for ``{name: shape}``, drawn in sorted-name order."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(shapes):
        shape = tuple(int(d) for d in shapes[name])
        leaf = name.rsplit('/', 1)[-1]
        if leaf == 'gamma':
            v = rng.uniform(0.7, 1.3, shape)
        elif leaf in ('beta', 'moving_mean', 'bias'):
            v = rng.normal(0.0, 0.1, shape)
        elif leaf == 'moving_variance':
            v = rng.uniform(0.7, 1.4, shape)
        elif leaf in _KERNELS:
            v = rng.normal(0.0, _gain(name) / np.sqrt(max(_fan_in(name, shape), 1)), shape)
        else:
            raise ValueError(f'no random value rule for {name}')
        out[name] = v.astype(np.float32)
    return out
