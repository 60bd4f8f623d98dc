# SpineNet-49 image classifier (Du et al., CVPR 2020, arXiv 1912.05027, Sec. 4.3): the P3-P7
# endpoints (256 channels) upsampled nearest-neighbour to P3's size and averaged, global average
# pooling, one linear layer. The improved recipe of tensorflow/tpu
# models/official/detection/configs/spinenet/spinenet49_classification.yaml: swish, stochastic
# depth 0.2 (init_drop_connect_rate), label smoothing 0.1; BN momentum 0.9 (PyTorch 0.1),
# eps 1e-5, no SyncBN; fc initialised N(0, 0.01).
norm_cfg = dict(type='BN', momentum=0.1, eps=1e-5, requires_grad=True)
model = dict(
    type='SpineClassifier',
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(
        type='SpineNet', arch='49', min_level=3, max_level=7, norm_cfg=norm_cfg,
        act_cfg=dict(type='SiLU'), drop_path_rate=0.2),
    neck=dict(type='PyramidAveragePooling', aggregation='all'),
    head=dict(type='LinearClassificationHead', num_classes=1000, in_channels=256,
              label_smoothing=0.1, topk=(1, 5)))
