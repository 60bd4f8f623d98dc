"""Training-step time of TF Model Garden's RetinaNet + SpineNet (``RetinaNetTask``); runs in .venv-tf.

The reference side of ``tools/analysis_tools/benchmark.py --train --compare`` for RetinaNet
configs with a SpineNet backbone. The model is TF's own recipe, ``retinanet_spinenet_coco``
(``official/vision/configs/retinanet.py``), adjusted to the benchmarked config: backbone arch
(``model_id``), levels, stochastic depth, activation, input size, head convs / filters, anchors
(scales, aspect ratios, size), classes; BN is plain (not synchronised), as ours on one device.
``RetinaNetTask.build_model`` builds it (random init) and ``RetinaNetTask.train_step`` trains
it: forward (``training=True``), ``RetinaNetTask.build_losses`` (focal + Huber loss, plus the
recipe's L2 weight decay through the model's regularisation losses), gradients, one
``tf_keras`` SGD step (lr 1e-5, momentum 0.9, as the benchmark's own step), all in one
``tf.function``.

Labels come from TF's ``official.vision.ops.anchor.AnchorLabeler`` (match and unmatched
thresholds 0.5, as TF's parser) on TF's anchors (``build_anchor_generator``). TF's input
pipeline labels the anchors in ``tf.data``, outside the step, while our step assigns anchors
inside it, so two steps are timed (runs of the JSON protocol):

- ``with_labeler``: the labeler runs inside the timed ``tf.function``, image by image, as
  ours does (``labeler_in_step: true``);
- ``precomputed``: the targets are labelled once beforehand, as TF's input pipeline does
  (``labeler_in_step: false``).

TF's classes are 1-based: class 0 is a background logit that every unmatched anchor trains
towards (``tf.one_hot`` of its target 0), so TF's head has ``--num-classes`` + 1 outputs per
anchor and the benchmark's 0-based labels are shifted by one; boxes become pixel
``[y0, x0, y1, x1]``. The benchmark sends its ground truths with each ``{"batch": B}`` request
(``latency_worker.py``).

Usage::

    .venv-tf/bin/python mmdet_spine/analysis/references/tf_retinanet_train_latency.py --arch 49S \\
        --size 384 --batch 2 --num-classes 80 --head-filters 128 --runs 5 --threads 2
"""
import json
import os
import os.path as osp
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # latency_worker
from latency_worker import parse_tf_spinenet_args, tf_spinenet_parser  # noqa: E402

#: The benchmark's training step uses this optimiser too.
SGD = dict(learning_rate=1e-5, momentum=0.9)
#: The two timed steps: whether TF's anchor labeler runs inside the timed step.
RUNS = {'with_labeler': True, 'precomputed': False}


def parse_args(argv=None):
    """Command line (see the module docstring)."""
    p = tf_spinenet_parser(__doc__.split('\n\n')[0], batch=2, runs=5, warmup=1)
    p.add_argument('--drop-path', type=float, default=0.2, help='stochastic depth rate')
    p.add_argument('--num-classes', type=int, default=80,
                   help="foreground classes (ours); TF's head gets one more (background)")
    p.add_argument('--head-convs', type=int, default=4)
    p.add_argument('--head-filters', type=int, default=256)
    p.add_argument('--num-scales', type=int, default=3)
    p.add_argument('--aspect-ratios', type=float, nargs='+', default=[0.5, 1.0, 2.0])
    p.add_argument('--anchor-size', type=float, default=3.0)
    return parse_tf_spinenet_args(p, argv)


def build_task(args):
    """``RetinaNetTask`` of ``retinanet_spinenet_coco`` adjusted to ``args``."""
    from official.vision.configs import retinanet as exp_cfg
    from official.vision.tasks.retinanet import RetinaNetTask
    config = exp_cfg.retinanet_spinenet_coco()
    model = config.task.model
    spinenet = model.backbone.spinenet
    spinenet.model_id = args.arch
    spinenet.min_level, spinenet.max_level = args.min_level, args.max_level
    spinenet.stochastic_depth_drop_rate = args.drop_path
    model.min_level, model.max_level = args.min_level, args.max_level
    model.input_size = [args.size[0], args.size[1], 3]
    model.num_classes = args.num_classes + 1  # class 0: TF's background logit
    model.head.num_convs, model.head.num_filters = args.head_convs, args.head_filters
    model.anchor.num_scales = args.num_scales
    model.anchor.aspect_ratios = list(args.aspect_ratios)
    model.anchor.anchor_size = args.anchor_size
    model.norm_activation.activation = args.activation
    model.norm_activation.use_sync_bn = False
    config.validate()
    return config.task, RetinaNetTask(config.task)


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np
    import tensorflow as tf
    import tf_keras
    from official.vision.ops import anchor
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    task_config, task = build_task(args)
    model = task.build_model()
    optimizer = tf_keras.optimizers.SGD(**SGD)
    anchor_boxes = anchor.build_anchor_generator(
        min_level=args.min_level, max_level=args.max_level, num_scales=args.num_scales,
        aspect_ratios=list(args.aspect_ratios), anchor_size=args.anchor_size)(
            image_size=args.size)
    labeler = anchor.AnchorLabeler(
        match_threshold=task_config.train_data.parser.match_threshold,
        unmatched_threshold=task_config.train_data.parser.unmatched_threshold,
        box_coder_weights=task_config.model.detection_generator.box_coder_weights)

    def label(boxes, classes):
        """Per image, as TF's parser: ``label_anchors``, then stacked into a batch."""
        per_image = []
        for i in range(boxes.shape[0]):
            cls_t, box_t, _, cls_w, box_w = labeler.label_anchors(
                anchor_boxes, boxes[i], tf.expand_dims(classes[i], axis=1))
            per_image.append(dict(cls_targets=cls_t, box_targets=box_t, cls_weights=cls_w,
                                  box_weights=box_w))
        return tf.nest.map_structure(lambda *t: tf.stack(t), *per_image)

    @tf.function
    def step_with_labeler(images, boxes, classes):
        return task.train_step((images, label(boxes, classes)), model, optimizer)

    @tf.function
    def step_precomputed(images, labels):
        return task.train_step((images, labels), model, optimizer)

    steps = dict(with_labeler=lambda i: step_with_labeler(i['images'], i['boxes'], i['classes']),
                 precomputed=lambda i: step_precomputed(i['images'], i['labels']))

    def make_input(batch, targets=None):
        if targets is None:  # the --runs mode: three boxes per image
            targets = [dict(boxes_xyxy=[[8, 8, 64, 64], [32, 16, 96, 80], [4, 40, 60, 120]],
                            labels=[0, 1 % args.num_classes, 2 % args.num_classes])] * batch
        if len(targets) != batch:
            raise SystemExit(f'{batch} images need {batch} targets, got {len(targets)}')
        rng = np.random.default_rng(batch)
        xyxy = np.array([t['boxes_xyxy'] for t in targets], np.float32)
        inputs = dict(
            images=tf.constant(rng.normal(size=(batch, *args.size, 3)).astype(np.float32)),
            boxes=tf.constant(xyxy[..., [1, 0, 3, 2]]),  # pixel yxyx
            classes=tf.constant(np.array([t['labels'] for t in targets], np.int32) + 1))
        inputs['labels'] = tf.function(label)(inputs['boxes'], inputs['classes'])
        for name in steps:
            run(name, inputs)  # trace, untimed
        return inputs

    def run(name, inputs) -> float:
        start = time.perf_counter()
        logs = steps[name](inputs)
        float(logs['loss'])  # the step is done
        return time.perf_counter() - start

    model(tf.zeros([1, *args.size, 3]), training=False)  # builds the head's variables too
    params = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    runs = {name: (lambda i, name=name: run(name, i)) for name in steps}
    info = {name: dict(mode='tf.function', labeler_in_step=RUNS[name],
                       scope='training step: RetinaNetTask.train_step (forward, build_losses, '
                             'gradients, SGD)' + (' + AnchorLabeler' if RUNS[name] else ''),
                       options=dict(sgd=SGD, l2_weight_decay=task_config.losses.l2_weight_decay,
                                    num_classes_tf=task_config.model.num_classes))
            for name in steps}
    name = f'TF Model Garden RetinaNet-SpineNet-{args.arch} RetinaNetTask (TF {tf.__version__})'
    if not args.serve:
        inputs = make_input(args.batch)
        times = {}
        for key, fn in runs.items():
            for _ in range(args.warmup):
                fn(inputs)
            times[key] = [fn(inputs) for _ in range(args.runs)]
        print(json.dumps(dict(params=params, name=name, runs=info, seconds=times)))
        return 0
    from latency_worker import serve
    return serve(dict(params=params, tensorflow=tf.__version__, name=name, runs=info),
                 make_input, runs)


if __name__ == '__main__':
    sys.exit(main())
