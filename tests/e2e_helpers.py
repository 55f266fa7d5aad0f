"""Helpers of tests/test_train_e2e.py that run inside the training processes (or spawned test processes)."""
import json, logging, os, os.path as osp, shutil
import numpy as np
import torch
from segnb.dist import get_dist_info
from segnb.hooks import Hook, multi_gpu_test
from segnb.registry import HOOKS
from segnb.data import build_dataloader


@HOOKS.register_module()
class RecordSamplesHook(Hook):
    "Each rank writes to `out_dir`: the image names of every training batch, and at the end what it wrote to disk."
    def __init__(self, out_dir):
        self.out_dir, self.writes = out_dir, []

    def before_run(self, runner):
        self._watch(torch, 'save', lambda obj, f, *a, **k: getattr(f, 'name', f))
        self._watch(os, 'replace', lambda src, dst, *a, **k: dst)
        self._watch(os, 'symlink', lambda src, dst, *a, **k: dst)
        self._watch(shutil, 'copyfile', lambda src, dst, *a, **k: dst)

    def _watch(self, module, name, target):
        "Wrap `module.name` so that every call that writes a file records its path (in-memory buffers are skipped)."
        original = getattr(module, name)
        def wrapper(*args, **kwargs):
            path = target(*args, **kwargs)
            if isinstance(path, (str, os.PathLike)): self.writes.append(os.fspath(path))
            return original(*args, **kwargs)
        setattr(module, name, wrapper)

    def _dump(self, suffix, record):
        with open(osp.join(self.out_dir, f'rank{get_dist_info()[0]}{suffix}'), 'a') as f: f.write(json.dumps(record) + '\n')

    def before_train_iter(self, runner):
        rank, world_size = get_dist_info()
        names = [osp.basename(m['filename']) for m in runner.data_batch['img_metas']]
        self._dump('.jsonl', dict(rank=rank, world_size=world_size, pid=os.getpid(), epoch=runner.data_loader.epoch,
                                  iter=runner.iter, files=names))

    def after_run(self, runner):
        files = [h.baseFilename for h in logging.getLogger('segnb').handlers if isinstance(h, logging.FileHandler)]
        self._dump('_end.json', dict(pid=os.getpid(), writes=self.writes, log_files=files, iter=runner.iter))


class IndexDataset(torch.utils.data.Dataset):
    "`n` one-pixel samples whose `pre_eval` areas are one-hot in the sample index, so that summed areas count images."
    def __init__(self, n): self.n = n
    def __len__(self): return self.n
    def __getitem__(self, idx):
        idx = idx[0] if isinstance(idx, (tuple, list)) else idx
        return dict(img=torch.full((1, 1, 1), float(idx)), img_metas=dict(index=idx))
    def pre_eval(self, preds, indices):
        return [tuple(np.eye(self.n)[i] for _ in range(4)) for i in indices]


class EchoModel(torch.nn.Module):
    "Predicts the index of each image."
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
    def forward(self, img, img_metas=None, return_loss=False):
        return [int(v) for v in img.reshape(-1)]


def count_eval_images(n, samples_per_gpu=1):
    "How often `multi_gpu_test` counts each of `n` images (pre_eval areas summed over all processes)."
    loader = build_dataloader(IndexDataset(n), samples_per_gpu=samples_per_gpu, workers_per_gpu=0,
                              dist=get_dist_info()[1] > 1, shuffle=False)
    return multi_gpu_test(EchoModel(), loader, pre_eval=True)[0][0].tolist()
