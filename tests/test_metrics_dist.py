"Two CPU processes (gloo) sum their metric areas with segnb.metrics.reduce_areas."
import os, socket
import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from segnb.metrics import intersect_and_union, sum_areas, reduce_areas, total_area_to_metrics, eval_metrics

NUM_CLASSES = 5

def _data():
    rng = np.random.RandomState(1)
    preds = [rng.randint(0, NUM_CLASSES, size=(16, 12)) for _ in range(5)]
    gts = [rng.randint(0, NUM_CLASSES + 1, size=(16, 12)) for _ in range(5)]
    for g in gts: g[g == NUM_CLASSES] = 255
    return preds, gts

def _worker(rank, world_size, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        preds, gts = _data()
        mine = [intersect_and_union(p, g, NUM_CLASSES, 255) for p, g in list(zip(preds, gts))[rank::world_size]]
        local = sum_areas(mine)
        total = reduce_areas(local)
        torch.save({'local': torch.stack(local), 'total': torch.stack(total)}, os.path.join(out_dir, f'{rank}.pt'))
    finally:
        dist.destroy_process_group()

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def test_reduce_areas_sums_over_two_processes(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f'{r}.pt', weights_only=True) for r in range(2))
    preds, gts = _data()
    expected = torch.stack([intersect_and_union(p, g, NUM_CLASSES, 255)[i] for p, g in zip(preds, gts)
                            for i in range(4)]).view(len(preds), 4, NUM_CLASSES).sum(0)
    assert not torch.equal(r0['local'], expected)          # each process alone saw only part of the pixels
    assert torch.equal(r0['local'] + r1['local'], expected)
    assert torch.equal(r0['total'], expected) and torch.equal(r1['total'], expected)
    ours = total_area_to_metrics(*r0['total'].unbind(0), metrics=['mIoU', 'mDice', 'mFscore'])
    whole = eval_metrics(preds, gts, NUM_CLASSES, 255, metrics=['mIoU', 'mDice', 'mFscore'])
    for k in whole: np.testing.assert_allclose(ours[k], whole[k])
