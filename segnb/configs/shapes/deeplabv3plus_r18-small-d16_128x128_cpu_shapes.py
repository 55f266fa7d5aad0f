# The default config of `python -m segnb.train`: a small DeepLabV3+ on the generated Shapes dataset that trains on a
# laptop CPU in a few minutes. ResNetV1c-18 at a quarter of the usual width (16 base channels) with output stride 16,
# and a decoder that adds stride-4 features, so that shape boundaries come out sharp.
_base_ = [
    '../_base_/models/deeplabv3plus_r50-d8.py', '../_base_/datasets/shapes.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_cpu.py'
]
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        depth=18,
        stem_channels=16,
        base_channels=16,
        dilations=(1, 1, 1, 2),
        strides=(1, 2, 2, 1)),
    decode_head=dict(
        in_channels=128,
        channels=32,
        dilations=(1, 2, 4, 6),
        c1_in_channels=16,
        c1_channels=8,
        num_classes=4),
    auxiliary_head=None)
log_config = dict(interval=20, hooks=[dict(type='TextLoggerHook', by_epoch=False)])
custom_hooks = [dict(type='ProgressBarHook')]
cudnn_benchmark = False
