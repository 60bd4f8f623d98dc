# SpineNet-96 ImageNet-1k classifier, the baseline recipe of tensorflow/tpu
# models/official/detection/configs/spinenet/spinenet96_classification.yaml (its header:
# init_drop_connect_rate null, activation relu, label_smoothing 0.0); otherwise as
# spinenet-96_32xb128-200e_in1k.py.
_base_ = './spinenet-96_32xb128-200e_in1k.py'
model = dict(backbone=dict(act_cfg=dict(type='ReLU'), drop_path_rate=0.0),
             head=dict(label_smoothing=0.0))
