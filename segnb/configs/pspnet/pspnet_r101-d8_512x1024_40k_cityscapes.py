_base_ = './pspnet_r50-d8_512x1024_40k_cityscapes.py'
model = dict(backbone=dict(depth=101))
