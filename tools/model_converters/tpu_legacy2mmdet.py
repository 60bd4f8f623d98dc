"""Convert the legacy tensorflow/tpu SpineNet checkpoints (TF1, name-based) for mmdet-spine.

A thin wrapper over :mod:`mmdet_spine.converters.tpu_legacy` (its docstring documents the
names and the mapping). ``CHECKPOINT -> OUT.pth`` runs both stages (the TF stage in
``--tf-python``), ``CHECKPOINT -> OUT.npz`` the TF stage only, ``IN.npz -> OUT.pth`` the torch
stage only (no TensorFlow needed).

Usage::

    python tools/model_converters/tpu_legacy2mmdet.py spinenet-49-best/ retinanet49_tpu.pth \\
        --arch 49 --tf-python /path/to/tf-venv/bin/python
"""
import argparse
import os
import subprocess
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert legacy tensorflow/tpu SpineNet checkpoints to mmdet_spine',
        epilog='See mmdet_spine/converters/tpu_legacy.py for the mapping.')
    parser.add_argument('src', help='TF checkpoint (prefix or directory) or .npz')
    parser.add_argument('dst', nargs='?', help='.npz (TF stage only) or .pth')
    parser.add_argument('--arch', required=True, help='49S, 49, 96, 143 or 190')
    parser.add_argument('--family', default='spinenet', choices=('spinenet', 'mbconv'),
                        help="'spinenet' or 'mbconv' (SpineNet-MBConv -> SpineNetMobile)")
    parser.add_argument('--head', default='auto',
                        choices=('auto', 'retinanet', 'mask_rcnn', 'classification', 'none'),
                        help="'auto' (default): the head the checkpoint has; 'none': backbone")
    parser.add_argument('--classes', default='auto', choices=('auto', 'coco80', 'all'),
                        help="head classes: 'coco80' (auto for TF's 91-class heads) or 'all'")
    parser.add_argument('--prefix', default=None,
                        help="backbone key prefix (default '' alone, 'backbone.' with a head)")
    parser.add_argument('--tf-python', default=None,
                        help='interpreter with TensorFlow for the TF stage (default: '
                        '$MMDET_SPINE_TF_PYTHON)')
    parser.add_argument('--no-check', action='store_true',
                        help='do not compare with freshly built mmdet_spine modules')
    parser.add_argument('--list', action='store_true',
                        help='print the checkpoint names and shapes, write nothing')
    args = parser.parse_args(argv)
    if not args.list and not args.dst:
        parser.error('DST is required (.npz for the TF stage only, .pth otherwise)')
    if args.src.endswith('.npz') and (args.list or args.dst.endswith('.npz')):
        parser.error('the TF stage reads a TF checkpoint, not an .npz')
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmdet_spine.converters import tf_model_garden as tmg
    from mmdet_spine.converters import tpu_legacy
    from mmdet_spine.errors import ConverterError

    try:
        if args.list or args.dst.endswith('.npz'):
            python = tmg.resolve_tf_python(args.tf_python)
            cmd = [python, '-P', tpu_legacy.reader_path(), args.src]
            cmd += ['--list'] if args.list else [args.dst]
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
            return subprocess.run(cmd, env=env).returncode
        state = tpu_legacy.convert_tpu_checkpoint(
            args.src, args.dst, arch=args.arch, family=args.family, head=args.head,
            classes=args.classes, prefix=args.prefix, check=not args.no_check,
            tf_python=args.tf_python)
    except ConverterError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f'{len(state)} tensors -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
