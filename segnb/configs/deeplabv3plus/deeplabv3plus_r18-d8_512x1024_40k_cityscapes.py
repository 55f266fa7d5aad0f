_base_ = './deeplabv3plus_r50-d8_512x1024_40k_cityscapes.py'
model = dict(
    backbone=dict(depth=18),
    decode_head=dict(
        in_channels=512,
        channels=128,
        c1_in_channels=64, c1_channels=12,
    ),
    auxiliary_head=dict(in_channels=256, channels=64))
