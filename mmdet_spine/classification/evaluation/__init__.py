"""Classification metrics; importing registers them into ``mmdet.registry.METRICS``."""
from .accuracy import ClassificationAccuracy

__all__ = ['ClassificationAccuracy']
