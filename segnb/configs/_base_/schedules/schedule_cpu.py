# a short schedule for small models on a CPU: minutes, not days
optimizer = dict(type='AdamW', lr=0.003, betas=(0.9, 0.999), weight_decay=0.01)
optimizer_config = dict()
lr_config = dict(policy='poly', power=1.0, min_lr=1e-5, by_epoch=False,
                 warmup='linear', warmup_iters=50, warmup_ratio=0.1)
runner = dict(type='IterBasedRunner', max_iters=1200)
checkpoint_config = dict(by_epoch=False, interval=400, max_keep_ckpts=3)
evaluation = dict(interval=400, metric='mIoU', pre_eval=True, save_best='mIoU')
