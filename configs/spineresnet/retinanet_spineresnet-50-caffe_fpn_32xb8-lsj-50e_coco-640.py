# RetinaNet R50-FPN with a Caffe/MSRA-style ResNet (stride on the first 1x1 conv, as detectron2's
# stride_in_1x1=True) and Caffe-style input normalisation (BGR, mean subtraction, no std), so
# detectron2 / MSRA caffe ResNet weights load as they were trained.
_base_ = './retinanet_spineresnet-50_fpn_32xb8-lsj-50e_coco-640.py'
model = dict(
    data_preprocessor=dict(mean=[103.530, 116.280, 123.675], std=[1.0, 1.0, 1.0],
                           bgr_to_rgb=False),
    backbone=dict(style='caffe', init_cfg=dict(
        type='Pretrained', checkpoint='open-mmlab://detectron2/resnet50_caffe')))
