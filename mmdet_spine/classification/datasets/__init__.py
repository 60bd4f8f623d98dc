"""Classification datasets and transforms; importing registers them into mmdet's
``DATASETS`` / ``TRANSFORMS``."""
from .image_classification_dataset import (IMG_EXTENSIONS, ImageClassificationDataset,
                                           read_annotation_list, read_coco_style_json,
                                           scan_class_folders)
from .shapes_classification import (DEFAULT_SPEC, SHAPE_CLASSES, ShapesClassificationDataset,
                                    ensure_shapes_classification, generate_shapes_classification,
                                    render_shape)
from .transforms import (CenterCropResize, InceptionCrop, PackClassificationInputs,
                         center_crop_box)

__all__ = ['IMG_EXTENSIONS', 'ImageClassificationDataset', 'read_annotation_list',
           'read_coco_style_json', 'scan_class_folders', 'DEFAULT_SPEC', 'SHAPE_CLASSES',
           'ShapesClassificationDataset', 'ensure_shapes_classification',
           'generate_shapes_classification', 'render_shape', 'CenterCropResize',
           'InceptionCrop', 'PackClassificationInputs', 'center_crop_box']
