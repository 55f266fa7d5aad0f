"""Two SGD steps of a toy segmentor under a process group, for tests/test_dist.py.

Started by torchrun (`--launcher pytorch`) or by the test itself with Slurm's or Open MPI's variables set. Each rank
writes what it saw to `OUT/rank{R}.json`; the test compares the ranks with a single-process run of the same steps.
"""
import argparse, json, os
import torch
from torch import nn
import torch.distributed as dist
from segnb.dist import (init_dist, get_dist_info, wrap_model, unwrap_model, SegDistributedDataParallel, all_reduce_mean_dict,
                        any_across_ranks, sync_random_seed, broadcast_object, all_gather_object, destroy_dist)

BATCH, STEPS, LR = 4, 2, 0.5


class ToySegmentor(nn.Module):
    "A 1x1 conv 'segmentor' with mmseg's interface, and a head it never uses (so DDP must look for unused parameters)."
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.unused_head = nn.Conv2d(3, 2, 1)

    def forward(self, img, img_metas, gt_semantic_seg=None, return_loss=True):
        logits = self.conv(img)
        return {'decode.loss_ce': nn.functional.cross_entropy(logits, gt_semantic_seg[:, 0]),
                'decode.acc_seg': (logits.argmax(1) == gt_semantic_seg[:, 0]).float().mean() * 100}

    def _parse_losses(self, losses):
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        return loss, {**{k: v.detach() for k, v in losses.items()}, 'loss': loss.detach()}

    def train_step(self, data_batch, optimizer=None, **kwargs):
        loss, log_vars = self._parse_losses(self(**data_batch))
        return dict(loss=loss, log_vars=log_vars, num_samples=len(data_batch['img_metas']))


def make_batch(n=BATCH, seed=1):
    "A batch of `n` random images and labels."
    g = torch.Generator().manual_seed(seed)
    return dict(img=torch.randn(n, 3, 4, 4, generator=g), img_metas=[dict(idx=i) for i in range(n)],
                gt_semantic_seg=torch.randint(0, 2, (n, 1, 4, 4), generator=g))


def shard(batch, rank, world_size):
    "Rank `rank`'s contiguous share of `batch`."
    size = len(batch['img_metas']) // world_size
    return {k: v[rank * size:(rank + 1) * size] for k, v in batch.items()}


def train(model, batch, steps=STEPS):
    "`steps` SGD steps with `train_step`; returns the first step's output and gradient of `conv.weight`."
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    for step in range(steps):
        optimizer.zero_grad()
        out = model.train_step(batch, optimizer)
        out['loss'].backward()
        if step == 0: first, grad = out, unwrap_model(model).conv.weight.grad.clone()
        optimizer.step()
    return first, grad


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument('--launcher', required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--fail-rank', type=int, default=-1)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    env = init_dist(args.launcher, timeout=60)
    rank, world_size = get_dist_info()
    if rank == args.fail_rank: raise RuntimeError(f'rank {rank} fails on purpose')   # while the others wait below
    shared_seed = sync_random_seed()
    torch.manual_seed(100 + rank)   # different weights on each rank: DDP must start them all from rank 0's
    model = wrap_model(ToySegmentor(), 'cpu', distributed=True, find_unused_parameters=True)
    batch = shard(make_batch(), rank, world_size)
    first, grad = train(model, batch)
    with torch.no_grad(): val = model.val_step(batch)
    result = dict(env=env, rank=rank, world_size=world_size, backend=dist.get_backend(),
                  wrapped=isinstance(model, SegDistributedDataParallel), num_samples=first['num_samples'],
                  local_loss=first['log_vars']['loss'].item(), mean_log=all_reduce_mean_dict(first['log_vars']),
                  val_loss=val['loss'].item(), grad=grad.tolist(),
                  weights={k: v.tolist() for k, v in unwrap_model(model).state_dict().items()},
                  seed=shared_seed, given_seed=sync_random_seed(1234 + rank),
                  stop_one=any_across_ranks(rank == world_size - 1), stop_none=any_across_ranks(False),
                  broadcast=broadcast_object(f'from rank {rank}'), gathered=all_gather_object(rank),
                  env_rank=os.environ['RANK'], env_world_size=os.environ['WORLD_SIZE'])
    destroy_dist()
    result['initialized_after_destroy'] = dist.is_initialized()
    with open(os.path.join(args.out, f'rank{rank}.json'), 'w') as f: json.dump(result, f)


if __name__ == '__main__':
    main()
