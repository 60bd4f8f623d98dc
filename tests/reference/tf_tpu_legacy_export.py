"""Name-based checkpoints and TF2 legacy reference outputs for the legacy-TPU parity tests
(runs in .venv-tf).

Per case (``--cases`` JSON, one process for the whole test module):

1. Regenerates the weights of a case recorded from tensorflow/tpu's own code
   (``tests/data/tpu_legacy/<case>.npz``: names, shapes, seed; see ``tpu_legacy_record.py``)
   and writes them as a TF1-style *name-based* checkpoint under the TPU names
   (``tf.raw_ops.SaveV2``, what ``tf.compat.v1.train.Saver`` writes), with a ``Momentum``
   slot per variable and a ``global_step`` as a TPUEstimator checkpoint has them.
2. With ``name_map`` (TF2 Keras layer path -> TPU layer path, written by the test from the
   converter's layouts): builds TF Model Garden's TF2 port of that code,
   ``official/legacy/detection`` (its Keras ``SpineNet`` and ``RetinanetHead``, the BN
   momentum / epsilon and activation of the case), loads the same weights through the map
   and writes its outputs in inference mode: ``__out_{level}__``, ``__cls_{level}__``,
   ``__box_{level}__`` (NHWC), ``__input__``; ``__meta__`` holds the trainable parameter
   count of the TF2 model.
"""
import argparse
import json
import os
import os.path as osp
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')  # official/legacy uses tf.keras (Keras 2)

import numpy as np  # noqa: E402

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from tpu_legacy_weights import random_weights  # noqa: E402


def load_recorded(path):
    with np.load(path, allow_pickle=False) as data:
        names = [str(n) for n in data['__names__']]
        shapes = json.loads(str(data['__shapes__']))
        meta = json.loads(str(data['__meta__']))
        image = data['__input__']
    return dict(zip(names, shapes)), meta, image


def write_name_based(tf, prefix, weights):
    """A TF1 name-based checkpoint of ``weights`` (+ Momentum slots and global_step)."""
    os.makedirs(osp.dirname(prefix), exist_ok=True)
    names, tensors = [], []
    for name in sorted(weights):
        names += [name, f'{name}/Momentum']
        tensors += [tf.constant(weights[name]), tf.zeros_like(tf.constant(weights[name]))]
    names.append('global_step')
    tensors.append(tf.constant(231500, dtype=tf.int64))
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[''] * len(names),
                      tensors=tensors)
    with open(osp.join(osp.dirname(prefix), 'checkpoint'), 'w') as f:
        f.write(f'model_checkpoint_path: "{osp.basename(prefix)}"\n')


def tf2_reference(tf, tf_keras, meta, image, weights, name_map):
    """Outputs of official/legacy/detection's Keras SpineNet (+ RetinanetHead) with
    ``weights`` (TPU names) loaded through ``name_map``, keyed by each Keras variable's
    layer path (``conv2d_3``, ``bottleneck_block/batch_normalization_1``,
    ``class_net/class-0-3``, ``box_net/box-predict``)."""
    from official.legacy.detection.modeling.architecture import heads as legacy_heads
    from official.legacy.detection.modeling.architecture import nn_ops as legacy_nn_ops
    from official.legacy.detection.modeling.architecture import spinenet as legacy_spinenet

    tf_keras.backend.clear_session()
    size = meta['size']
    backbone = legacy_spinenet.SpineNet(
        input_specs=tf_keras.layers.InputSpec(shape=[None, size, size, 3]), min_level=3,
        max_level=7, activation=meta['activation'], norm_momentum=meta['momentum'],
        norm_epsilon=meta['epsilon'], **legacy_spinenet.SCALING_MAP[meta['arch']])
    x = tf.constant(image)
    feats = backbone(x, training=False)
    head, head_layers = None, []
    if meta['head'] == 'retinanet':
        norm_act = legacy_nn_ops.norm_activation_builder(
            momentum=meta['momentum'], epsilon=meta['epsilon'], activation=meta['activation'])
        head = legacy_heads.RetinanetHead(3, 7, meta['num_classes'], 9,
                                          num_convs=meta['num_convs'],
                                          num_filters=meta['num_filters'],
                                          norm_activation=norm_act)
        head(feats, is_training=False)  # builds the layers
        head_layers = (head._class_conv + head._box_conv + [head._class_predict,
                                                            head._box_predict]
                       + list(head._class_norm_activation.values())
                       + list(head._box_norm_activation.values()))
    loaded = set()

    def load(variable, layer_path):
        leaf = variable.name.split('/')[-1].split(':')[0]
        tpu = f'{name_map[layer_path]}/{leaf}'
        variable.assign(weights[tpu])
        loaded.add(tpu)

    # 'conv2d_3/kernel:0', 'bottleneck_block/conv2d_1/kernel:0', 'class_net/class-0-3/gamma:0'
    for v in list(backbone.variables) + [w for layer in head_layers for w in layer.weights]:
        load(v, v.name.split(':')[0].rsplit('/', 1)[0])
    missing = sorted(set(weights) - loaded)
    if missing:
        raise RuntimeError(f'{len(missing)} TPU variables have no TF2 variable, e.g. '
                           f'{missing[:5]}')
    feats = backbone(x, training=False)
    out = {f'__out_{int(k)}__': v.numpy() for k, v in feats.items()}
    trainable = [v for v in backbone.trainable_variables]
    trainable += [v for layer in head_layers for v in layer.trainable_weights]
    if head is not None:
        cls, box = head(feats, is_training=False)
        for level in range(3, 8):
            out[f'__cls_{level}__'] = cls[level].numpy()
            out[f'__box_{level}__'] = box[level].numpy()
    trainable = int(sum(np.prod(v.shape) for v in trainable))
    return out, dict(trainable_params=trainable, num_variables=len(loaded))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--cases', required=True, help='JSON list of {recorded, out, ckpt_out, '
                   'name_map (optional)}')
    args = p.parse_args(argv)
    import tensorflow as tf
    import tf_keras

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    with open(args.cases) as f:
        cases = json.load(f)
    for case in cases:
        shapes, meta, image = load_recorded(case['recorded'])
        weights = random_weights(shapes, meta['seed'])
        write_name_based(tf, case['ckpt_out'], weights)
        out, info = {}, {}
        if case.get('name_map'):
            with open(case['name_map']) as f:
                name_map = json.load(f)
            out, info = tf2_reference(tf, tf_keras, meta, image, weights, name_map)
        np.savez(case['out'], __input__=image,
                 __meta__=np.array(json.dumps(dict(meta, **info, tensorflow=tf.__version__))),
                 **out)
        print(json.dumps(dict(case=meta['case'], **info)))


if __name__ == '__main__':
    sys.exit(main())
