"Two-process (gloo) checks of the hooks that talk across processes: buffer sync, and both result collections."
from types import SimpleNamespace
import torch
from segnb.dist import get_dist_info, launch_local
from segnb.hooks import CheckpointHook, SyncBuffersHook, collect_results_cpu, collect_results_gpu, sync_buffers


def _bn_of_rank(rank):
    bn = torch.nn.BatchNorm1d(3)
    bn.running_mean.fill_(float(rank)); bn.running_var.fill_(2. * rank + 1); bn.num_batches_tracked.fill_(rank + 7)
    return bn


def _sync_worker():
    rank = get_dist_info()[0]
    direct = _bn_of_rank(rank); sync_buffers(direct)
    hooked = _bn_of_rank(rank); SyncBuffersHook().after_epoch(SimpleNamespace(model=hooked))
    off = _bn_of_rank(rank); SyncBuffersHook(distributed=False).after_epoch(SimpleNamespace(model=off))
    saved = []
    runner = SimpleNamespace(model=_bn_of_rank(rank), work_dir='/tmp', rank=rank, meta={},
                             save_checkpoint=lambda out_dir, **kw: saved.append(runner.model.running_mean.clone()) or '/tmp/x.pth')
    ck = CheckpointHook(by_epoch=False, sync_buffer=True); ck.before_run(runner); ck.save(runner)
    return [(m.running_mean.tolist(), m.running_var.tolist(), int(m.num_batches_tracked)) for m in (direct, hooked, off)] + [saved[0].tolist()]


def test_buffers_are_averaged_over_processes():
    r0, r1 = launch_local(_sync_worker, nprocs=2)
    assert r0[:2] == r1[:2] == [([0.5] * 3, [2.] * 3, 7)] * 2     # floats averaged, integers from rank 0
    assert r0[2] == ([0.] * 3, [1.] * 3, 7) and r1[2] == ([1.] * 3, [3.] * 3, 8)    # distributed=False: untouched
    assert r0[3] == r1[3] == [0.5] * 3                            # CheckpointHook(sync_buffer=True) syncs before saving


def _collect_worker(tmpdir):
    rank = get_dist_info()[0]
    # a strided sampler's share of 5 images on 2 processes: rank 1 repeats image 0 as padding
    part = [(i, f'result {i}') for i in ([0, 2, 4] if rank == 0 else [1, 3, 0])]
    return collect_results_gpu(part, 5), collect_results_cpu(part, 5, tmpdir)


def test_both_collection_modes_give_dataset_order_on_rank0(tmp_path):
    (gpu0, cpu0), (gpu1, cpu1) = launch_local(_collect_worker, nprocs=2, args=(str(tmp_path / 'collect'),))
    assert gpu0 == cpu0 == [f'result {i}' for i in range(5)]
    assert gpu1 is None and cpu1 is None
    assert list((tmp_path / 'collect').iterdir()) == []
