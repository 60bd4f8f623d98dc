"""Generate the COCO-format shapes dataset (deterministic for a given seed).

Usage: python tools/misc/generate_shapes.py [--out data/shapes] [--num-train 1000] ...
"""
import argparse
import os.path as osp

from mmdet_spine.datasets.shapes import DEFAULT_SPEC, generate_shapes_dataset


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/shapes', help='target directory (must not exist)')
    for key, value in DEFAULT_SPEC.items():
        parser.add_argument('--' + key.replace('_', '-'), type=int, default=value)
    args = parser.parse_args()
    if osp.exists(args.out):
        parser.error(f'{args.out} exists; remove it first to regenerate')
    spec = {k: getattr(args, k) for k in DEFAULT_SPEC}
    generate_shapes_dataset(args.out, **spec)
    print(f'wrote {args.out} ({spec})')


if __name__ == '__main__':
    main()
