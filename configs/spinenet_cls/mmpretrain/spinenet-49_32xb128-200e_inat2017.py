# SpineNet-49 iNaturalist-2017 classifier (5,089 classes) for mmpretrain users, with the
# ImageNet recipe (tensorflow/tpu MODEL_ZOO.md trains both alike; spinenet49_classification.yaml).
# mmpretrain has no iNaturalist dataset type: CustomDataset reads a "<path> <label>" list, e.g.
# made from the published train2017.json (or use our ImageClassificationDataset, registered into
# mmpretrain's DATASETS by mmdet_spine.classification.mmpretrain_models, which reads the JSON).
_base_ = './spinenet-49_32xb128-200e_in1k.py'
num_classes = 5089
model = dict(data_preprocessor=dict(num_classes=num_classes),
             head=dict(num_classes=num_classes))
data_root = 'data/inat2017/'
train_dataloader = dict(dataset=dict(
    _delete_=True, type='ImageClassificationDataset', data_root=data_root,
    ann_file='train2017.json', data_prefix='', pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(
    _delete_=True, type='ImageClassificationDataset', data_root=data_root,
    ann_file='val2017.json', data_prefix='', pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
