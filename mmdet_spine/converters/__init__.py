"""Weight converters: official checkpoints -> mmdet-spine state dicts (package code).

``tools/model_converters/*.py`` are thin command-line wrappers over these modules, and the
model zoo (:mod:`mmdet_spine.zoo`) calls them directly, so they work from an installed wheel.

* :mod:`.effdet` -- rwightman's effdet EfficientDet ports (PyTorch; ``effdet2mmdet``).
* :mod:`.tf_model_garden` -- TF Model Garden SpineNet / SpineNet-Mobile backbones and RetinaNet
  heads (``spinenet_tf2mmdet``); its TensorFlow stage :mod:`.tf_model_garden_reader` runs in a
  TensorFlow interpreter (``python -m mmdet_spine.converters.tf_model_garden_reader``) and
  imports only the standard library, numpy and TensorFlow.
* :mod:`.tpu_legacy` -- the legacy tensorflow/tpu SpineNet checkpoints (TF1, name-based:
  RetinaNet, Mask R-CNN; ``tpu_legacy2mmdet``); its TensorFlow stage :mod:`.tpu_legacy_reader`
  only lists the checkpoint's variables by name.

Each converter raises :class:`~mmdet_spine.errors.ConverterError` (one line) for a checkpoint it
cannot map, and checks every key and shape against a freshly built model.
"""
from .coco_classes import COCO80_CATEGORY_IDS

#: Converter name (as the metafiles' ``Upstream.Converter`` say) -> upstream format it reads.
CONVERTERS = {'effdet2mmdet': 'effdet-pytorch', 'spinenet_tf2mmdet': 'tf-model-garden',
              'tpu_legacy2mmdet': 'tf-tpu-legacy'}

__all__ = ['COCO80_CATEGORY_IDS', 'CONVERTERS']
