"""COCO category ids as the official checkpoints and mmdet number them.

TF Model Garden / google/automl / effdet heads predict COCO's original category ids (1..90,
plus a background column 0 in TF's 91-way heads); mmdet's ``CocoDataset`` uses the 80 ids that
have annotations, in increasing order, as labels 0..79.
"""

__all__ = ['COCO80_CATEGORY_IDS']

#: The 80 COCO category ids that have annotations, in mmdet ``CocoDataset`` label order.
COCO80_CATEGORY_IDS = tuple(i for i in range(1, 91) if i not in (
    12, 26, 29, 30, 45, 66, 68, 69, 71, 83))
