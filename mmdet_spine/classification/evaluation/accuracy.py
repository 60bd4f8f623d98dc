"""Top-k accuracy, the ImageNet metric (Russakovsky et al., IJCV 2015,
https://arxiv.org/abs/1409.0575): the fraction of images whose label is among the k
highest-scoring classes. SpineNet reports top-1 and top-5 (Du et al., CVPR 2020)."""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric

from mmdet.registry import METRICS
from mmdet_spine.errors import BadDataError, ConfigError


@METRICS.register_module()
class ClassificationAccuracy(BaseMetric):
    """Top-k accuracy in percent, as ``<prefix>/top<k>`` (e.g. ``accuracy/top1``).

    Reads ``pred_score`` and ``gt_label`` of every predicted data sample (what
    :class:`~mmdet_spine.classification.SpineClassifier` returns in ``'predict'`` mode). A
    ``k`` larger than the number of classes is reported over all classes (100 %).

    Args:
        topk (Sequence[int]): The k's. Default: (1, 5).
        collect_device (str): 'cpu' or 'gpu' for collecting results across ranks.
            Default: 'cpu'.
        prefix (str): Key prefix. Default: 'accuracy'.
    """

    default_prefix = 'accuracy'

    def __init__(self, topk: Sequence[int] = (1, 5), collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        topk = (topk,) if isinstance(topk, int) else tuple(topk)
        if not topk or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1
                               for k in topk):
            raise ConfigError(f'ClassificationAccuracy: topk={topk!r} must be integers >= 1')
        self.topk = topk

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for i, sample in enumerate(data_samples):
            if 'pred_score' not in sample or 'gt_label' not in sample:
                raise BadDataError(f'ClassificationAccuracy: predicted sample {i} needs '
                                   f'pred_score and gt_label, has {sorted(sample)}')
            self.results.append((torch.as_tensor(sample['pred_score']).detach().cpu(),
                                 int(torch.as_tensor(sample['gt_label']).reshape(-1)[0])))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        scores = torch.stack([s for s, _ in results]).float()
        labels = torch.tensor([lab for _, lab in results])
        metrics = {}
        for k in self.topk:
            top = scores.topk(min(k, scores.shape[1]), dim=1).indices
            metrics[f'top{k}'] = float((top == labels[:, None]).any(dim=1).float().mean() * 100)
        return metrics
