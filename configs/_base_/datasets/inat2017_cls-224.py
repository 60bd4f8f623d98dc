# iNaturalist-2017 (Van Horn et al., CVPR 2018, arXiv 1707.06642; 5,089 classes, 579,184 train
# and 95,986 val images) at 224x224 with the ImageNet crops (tensorflow/tpu MODEL_ZOO.md trains
# both datasets alike). Layout as published: data/inat2017/train_val_images/<super>/<class>/*.jpg
# with train2017.json / val2017.json (images, annotations.category_id, categories), read as
# they are; labels are the rank of the category id.
_base_ = './imagenet_cls-224.py'
dataset_type = 'ImageClassificationDataset'
data_root = 'data/inat2017/'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root,
                                     ann_file='train2017.json', data_prefix=''))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root,
                                   ann_file='val2017.json', data_prefix=''))
test_dataloader = val_dataloader
