"""Convert an rwightman effdet EfficientDet checkpoint for mmdet-spine's EfficientDet.

A thin wrapper over :mod:`mmdet_spine.converters.effdet` (see its docstring for the mapping).

Usage::

    python tools/model_converters/effdet2mmdet.py tf_efficientdet_d0_34-f153e0cf.pth \\
        efficientdet_d0_effdet.pth [--num-classes 80]
"""
import argparse


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='effdet checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint for mmdet_spine EfficientDet')
    parser.add_argument('--num-classes', type=int, default=90, choices=(80, 90),
                        help='90: effdet classes (COCO ids - 1); 80: mmdet CocoDataset labels')
    args = parser.parse_args()
    from mmdet_spine.converters.effdet import convert_file
    n = convert_file(args.src, args.dst, num_classes=args.num_classes)
    print(f'wrote {n} tensors to {args.dst}')


if __name__ == '__main__':
    from mmdet_spine.engine.cli import run_cli
    run_cli(main)
