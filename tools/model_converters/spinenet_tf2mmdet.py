"""Convert TF Model Garden SpineNet / SpineNet-Mobile (+ RetinaNet head) weights for mmdet-spine.

A thin wrapper over :mod:`mmdet_spine.converters.tf_model_garden` (its docstring documents the
mapping). The stage is picked from the file names:

* ``CHECKPOINT -> OUT.pth``: both stages (the TF stage in ``--tf-python``);
* ``CHECKPOINT -> OUT.npz``: the TF stage only (TF variables by name);
* ``IN.npz -> OUT.pth``: the torch stage only (no TensorFlow needed).

Usage::

    python tools/model_converters/spinenet_tf2mmdet.py retinanet-spinenet49/ckpt-231000 \\
        spinenet49_tf.pth --arch 49 --tf-python /path/to/tf-venv/bin/python
"""
import argparse
import os
import subprocess

CLASS_CHOICES = ('auto', 'coco80', 'all')
FAMILIES = ('spinenet', 'mobile')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert TF Model Garden SpineNet weights to mmdet_spine',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='See mmdet_spine/converters/tf_model_garden.py for the mapping.')
    parser.add_argument('src', help='TF checkpoint (prefix or directory) or .npz')
    parser.add_argument('dst', nargs='?', help='.npz (TF stage only) or .pth')
    parser.add_argument('--arch', required=True,
                        help="49S, 49, 96, 143, 143L or 190 (--family mobile: 49XS, 49S, 49)")
    parser.add_argument('--family', default='spinenet', choices=FAMILIES,
                        help="'spinenet' (default) or 'mobile' (TF SpineNetMobile, whose "
                        "RetinaNet head has separable convs)")
    parser.add_argument('--min-level', type=int, default=3)
    parser.add_argument('--max-level', type=int, default=7)
    parser.add_argument('--legacy', action='store_true',
                        help='official/legacy/detection SpineNet (15 block specs)')
    parser.add_argument('--weighted-fusion', action='store_true',
                        help='legacy SpineNet built with weighted fusion')
    parser.add_argument('--prefix', default='',
                        help="prepend to every backbone key (default: none for a backbone "
                        "alone, 'backbone.' when a RetinaNet head is converted too)")
    parser.add_argument('--no-head', action='store_true',
                        help='convert the backbone only, even if the checkpoint has a '
                        'RetinaNet head')
    parser.add_argument('--classes', default='auto', choices=CLASS_CHOICES,
                        help="head classes: 'coco80' keeps COCO's 80 category ids of TF's "
                        "91-class head (mmdet's CocoDataset labels), 'all' every TF class; "
                        "'auto' (default): coco80 for a 91-class head, else all")
    parser.add_argument('--num-scales', type=int, default=3, help='TF anchor.num_scales')
    parser.add_argument('--tf-aspect-ratios', type=float, nargs='+', default=[0.5, 1.0, 2.0],
                        help='TF anchor.aspect_ratios (width / height)')
    parser.add_argument('--ratios', type=float, nargs='+', default=[0.5, 1.0, 2.0],
                        help="our anchor_generator.ratios (height / width)")
    parser.add_argument('--tf-anchor-order', action='store_true',
                        help='our anchor_generator has scale_major=False (TF\'s order); '
                        'default: mmdet\'s scale_major=True')
    parser.add_argument('--tf-python', default=None,
                        help='interpreter with TensorFlow + tf-models-official for the TF '
                        'stage (default: $MMDET_SPINE_TF_PYTHON)')
    parser.add_argument('--no-check', action='store_true',
                        help='do not compare with a freshly built mmdet_spine SpineNet')
    parser.add_argument('--list', action='store_true',
                        help='print the TF checkpoint keys and shapes, write nothing')
    args = parser.parse_args(argv)
    if args.weighted_fusion and not args.legacy:
        parser.error('--weighted-fusion needs --legacy')
    if args.family == 'mobile' and args.legacy:
        parser.error('--family mobile has no --legacy variant')
    if not args.list and not args.dst:
        parser.error('DST is required (.npz for the TF stage only, .pth otherwise)')
    if args.src.endswith('.npz') and (args.list or args.dst.endswith('.npz')):
        parser.error('the TF stage reads a TF checkpoint, not an .npz')
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmdet_spine.converters import tf_model_garden as tmg
    if args.list:
        subprocess.run([tmg.resolve_tf_python(args.tf_python), '-P', tmg.reader_path(),
                        args.src, '--list'], check=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
        return
    levels = dict(arch=args.arch, family=args.family, min_level=args.min_level,
                  max_level=args.max_level, legacy=args.legacy,
                  weighted_fusion=args.weighted_fusion)
    if args.dst.endswith('.npz'):
        tmg.run_reader(args.src, args.dst, args.tf_python, with_head=not args.no_head,
                       **levels)
        print(f'TF variables -> {args.dst}')
        return
    head_options = dict(classes=args.classes, num_scales=args.num_scales,
                        tf_aspect_ratios=args.tf_aspect_ratios, ratios=args.ratios,
                        scale_major=not args.tf_anchor_order)
    state = tmg.convert_tf_checkpoint(
        args.src, args.dst, with_head=not args.no_head, prefix=args.prefix or None,
        check=not args.no_check, tf_python=args.tf_python, head_options=head_options,
        **levels)
    print(f'{len(state)} tensors -> {args.dst}')


if __name__ == '__main__':
    from mmdet_spine.engine.cli import run_cli
    run_cli(main)
