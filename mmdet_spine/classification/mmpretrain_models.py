"""Our backbones, the SpineNet classification neck and our datasets in mmpretrain's registries.

For users of mmpretrain (OpenMMLab's classification toolbox): importing this module imports
mmpretrain and registers :class:`~mmdet_spine.models.backbones.SpineNet`,
:class:`~mmdet_spine.models.backbones.SpineNetMobile`,
:class:`~mmdet_spine.models.backbones.SpineResNet` and
:class:`~mmdet_spine.classification.PyramidAveragePooling` into its ``MODELS``, and
:class:`~mmdet_spine.classification.ImageClassificationDataset` (which reads iNaturalist's
JSON) and the generated :class:`~mmdet_spine.classification.ShapesClassificationDataset` into
its ``DATASETS`` (their items, ``img_path`` + ``gt_label``, are what mmpretrain's pipelines
read), under those names, so that
mmpretrain's ``ImageClassifier`` / ``LinearClsHead`` configs (``configs/spinenet_cls/mmpretrain``)
build them with ``default_scope = 'mmpretrain'`` and::

    custom_imports = dict(imports=['mmdet_spine.classification.mmpretrain_models'],
                          allow_failed_imports=False)

Nothing else in mmdet-spine imports this module (detection users need no mmpretrain); it is
imported only by such configs. Registration adds names; it never replaces one of
mmpretrain's (a name mmpretrain already has is an error, not an override).
"""
from mmdet_spine.errors import UserError

try:
    from mmpretrain.registry import DATASETS as MMPRETRAIN_DATASETS
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
except Exception as e:  # noqa: BLE001  (ImportError, or torchvision failing inside it)
    raise UserError(
        'mmdet_spine.classification.mmpretrain_models needs an importable mmpretrain '
        f'(pip install mmpretrain); importing it failed: {type(e).__name__}: {e}') from e

from mmdet_spine.models.backbones import SpineNet, SpineNetMobile, SpineResNet

from .datasets import ImageClassificationDataset, ShapesClassificationDataset
from .models import PyramidAveragePooling

#: What this module registers into mmpretrain's ``MODELS``.
REGISTERED_MODELS = {'SpineNet': SpineNet, 'SpineNetMobile': SpineNetMobile,
                     'SpineResNet': SpineResNet, 'PyramidAveragePooling': PyramidAveragePooling}
#: What this module registers into mmpretrain's ``DATASETS``.
REGISTERED_DATASETS = {'ImageClassificationDataset': ImageClassificationDataset,
                       'ShapesClassificationDataset': ShapesClassificationDataset}


def register_into(registry, modules) -> None:
    """Register ``modules`` (name -> class) into ``registry``; idempotent for our classes.

    Raises:
        UserError: if ``registry`` already holds one of the names for another class.
    """
    for name, cls in modules.items():
        existing = registry.module_dict.get(name)
        if existing is cls:
            continue
        if existing is not None:
            raise UserError(f'mmpretrain already registers {name!r} ({existing.__module__}); '
                            'mmdet-spine will not replace it')
        registry.register_module(name=name, module=cls)


register_into(MMPRETRAIN_MODELS, REGISTERED_MODELS)
register_into(MMPRETRAIN_DATASETS, REGISTERED_DATASETS)
