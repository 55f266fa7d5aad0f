"parse_losses under a 2-process gloo group: the same loss keys pass, different keys stop every rank with one line."
import json, os, socket
import multiprocessing as mp
from pathlib import Path
import torch
import torch.distributed as dist
from segnb.errors import SegnbError
from segnb.models import BaseSegmentor, parse_losses

KEYS = {0: ['decode.loss_ce', 'decode.acc_seg', 'aux.loss_ce'], 1: ['decode.acc_seg', 'decode.loss_ce']}


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _rank(rank, port, out_dir):
    "Parse the same keys in another order (must pass), then keys that differ (must raise, not hang)."
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    try:
        same = ['decode.loss_ce', 'decode.acc_seg'][::1 if rank == 0 else -1]
        total, _ = BaseSegmentor._parse_losses({k: torch.tensor(float(rank + 1)) for k in same})
        try:
            parse_losses({k: torch.tensor(1.) for k in KEYS[rank]})
            error = None
        except SegnbError as e: error = str(e)
        Path(out_dir, f'{rank}.json').write_text(json.dumps(dict(total=total.item(), error=error)))
    finally: dist.destroy_process_group()


def test_loss_keys_must_match_across_ranks(tmp_path):
    ctx = mp.get_context('fork')
    port = free_port()
    procs = [ctx.Process(target=_rank, args=(r, port, str(tmp_path))) for r in range(2)]
    for p in procs: p.start()
    for p in procs: p.join(60)
    for p in procs: p.kill()
    assert [p.exitcode for p in procs] == [0, 0]
    res = [json.loads((tmp_path / f'{r}.json').read_text()) for r in range(2)]
    assert [r['total'] for r in res] == [1.0, 2.0]                   # same keys in another order: no error
    for r, out in enumerate(res):
        assert out['error'] == (f'loss keys differ across ranks: rank {r} has {", ".join(KEYS[r])}; '
                                f'not on every rank: aux.loss_ce')
        assert '\n' not in out['error']
