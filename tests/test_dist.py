"""segnb.dist with real processes: torchrun, and Slurm / Open MPI environments simulated by starting the ranks here."""
import json, os, socket, subprocess, sys
import multiprocessing as mp
from pathlib import Path
import pytest
import torch
from segnb.errors import SegnbError
from segnb.dist import launcher_env, detect_launcher, expand_nodelist, slurm_master_addr, wrap_model, init_dist
import dist_worker

WORKER = Path(dist_worker.__file__)
LAUNCH_KEYS = ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'GROUP_RANK',
               'TORCHELASTIC_RUN_ID', 'TORCHELASTIC_USE_AGENT_STORE')


def clean_env(**extra):
    "This process's environment without any launcher's variables, plus `extra`."
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_KEYS and not k.startswith(('SLURM_', 'OMPI_'))}
    return {**env, 'OMP_NUM_THREADS': '1', **{k: str(v) for k, v in extra.items()}}


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def torchrun():
    "The torchrun next to this Python, or the module it runs."
    exe = Path(sys.executable).with_name('torchrun')
    return [str(exe)] if exe.exists() else [sys.executable, '-m', 'torch.distributed.run']


def reference():
    "The same steps in one process on the whole batch, starting from rank 0's weights."
    torch.manual_seed(100)
    model = wrap_model(dist_worker.ToySegmentor(), 'cpu', distributed=False)
    assert type(model) is dist_worker.ToySegmentor
    first, grad = dist_worker.train(model, dist_worker.make_batch())
    return first, grad, model.state_dict()


def check_ranks(out_dir, launcher):
    "Both ranks ran, agreed with each other, and match the single-process run."
    ranks = [json.loads((Path(out_dir) / f'rank{r}.json').read_text()) for r in range(2)]
    first, grad, weights = reference()
    for r, res in enumerate(ranks):
        assert (res['rank'], res['world_size'], res['env']['rank'], res['env']['world_size']) == (r, 2, r, 2)
        assert (res['env_rank'], res['env_world_size']) == (str(r), '2')
        assert res['backend'] == 'gloo' and res['wrapped'] and res['num_samples'] == 2
        torch.testing.assert_close(torch.tensor(res['grad']), grad)
        for k, v in weights.items(): torch.testing.assert_close(torch.tensor(res['weights'][k]), v, msg=f'{launcher}: {k}')
        assert res['mean_log']['loss'] == pytest.approx(sum(x['local_loss'] for x in ranks) / 2)
        assert res['mean_log']['loss'] == pytest.approx(first['loss'].item(), rel=1e-5)
        assert res['given_seed'] == 1234 and res['seed'] == ranks[0]['seed']
        assert (res['stop_one'], res['stop_none']) == (True, False)
        assert res['broadcast'] == 'from rank 0' and res['gathered'] == [0, 1]
        assert res['initialized_after_destroy'] is False
    assert ranks[0]['grad'] == ranks[1]['grad'] and ranks[0]['weights'] == ranks[1]['weights']
    assert ranks[0]['local_loss'] != ranks[1]['local_loss']   # they did see different shards
    return ranks


def test_torchrun(tmp_path):
    cmd = torchrun() + ['--standalone', '--nproc_per_node', '2', str(WORKER), '--launcher', 'pytorch', '--out', str(tmp_path)]
    proc = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = check_ranks(tmp_path, 'pytorch')
    assert ranks[0]['env']['local_rank'] == 0 and ranks[1]['env']['local_rank'] == 1


def _run_rank(environ, argv):
    "One rank started by the test: a launcher's variables in place of ours, then the worker."
    for k in [k for k in os.environ if k in LAUNCH_KEYS or k.startswith(('SLURM_', 'OMPI_'))]: del os.environ[k]
    os.environ.update({k: str(v) for k, v in environ.items()})
    dist_worker.main(argv)


def start_ranks(tmp_path, launcher, env_of_rank):
    "Start two ranks (forked, so they share this process's imports) with the environment a launcher would give them."
    import torch._dynamo  # noqa: F401  DDP imports it; importing it once here saves each rank seconds
    ctx = mp.get_context('fork')
    argv = ['--launcher', launcher, '--out', str(tmp_path)]
    procs = [ctx.Process(target=_run_rank, args=(env_of_rank(r), argv)) for r in range(2)]
    for p in procs: p.start()
    for p in procs: p.join(120)
    for p in procs: p.kill()
    assert [p.exitcode for p in procs] == [0, 0]


def test_slurm_environment(tmp_path):
    port = free_port()
    start_ranks(tmp_path, 'slurm', lambda r: dict(SLURM_PROCID=r, SLURM_NTASKS=2, SLURM_LOCALID=r,
                                                  SLURM_NODELIST='node[01-02]', MASTER_ADDR='127.0.0.1', MASTER_PORT=port))
    ranks = check_ranks(tmp_path, 'slurm')
    assert [r['env']['master_port'] for r in ranks] == [port, port]


def test_mpi_environment_single_node(tmp_path):
    "On one node (local size = world size) MPI needs no MASTER_ADDR."
    port = free_port()
    start_ranks(tmp_path, 'mpi', lambda r: dict(OMPI_COMM_WORLD_RANK=r, OMPI_COMM_WORLD_SIZE=2, OMPI_COMM_WORLD_LOCAL_RANK=r,
                                                OMPI_COMM_WORLD_LOCAL_SIZE=2, MASTER_PORT=port))
    ranks = check_ranks(tmp_path, 'mpi')
    assert ranks[1]['env']['master_addr'] == '127.0.0.1'


def test_failing_rank_stops_all(tmp_path):
    "A rank that raises makes torchrun stop the others (waiting in a collective) and report the error."
    cmd = torchrun() + ['--standalone', '--nproc_per_node', '2', str(WORKER), '--launcher', 'pytorch',
                        '--out', str(tmp_path), '--fail-rank', '1']
    proc = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert 'rank 1 fails on purpose' in proc.stderr
    assert not list(tmp_path.glob('rank*.json'))


def test_launcher_env_fakes():
    env = launcher_env('slurm', dict(SLURM_PROCID='1', SLURM_NTASKS='4', SLURM_LOCALID='1', SLURM_NODELIST='gpu[08-09,12],cpu1'))
    assert env == dict(rank=1, world_size=4, local_rank=1, master_addr='gpu08', master_port=29500)
    env = launcher_env('mpi', dict(OMPI_COMM_WORLD_RANK='0', OMPI_COMM_WORLD_SIZE='2', OMPI_COMM_WORLD_LOCAL_RANK='0',
                                   MASTER_ADDR='h', MASTER_PORT='1234'))
    assert env == dict(rank=0, world_size=2, local_rank=0, master_addr='h', master_port=1234)
    assert detect_launcher(dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='x', MASTER_PORT='1')) == 'pytorch'
    with pytest.raises(SegnbError, match='SLURM_NTASKS'): launcher_env('slurm', dict(SLURM_PROCID='0', SLURM_NODELIST='a'))
    with pytest.raises(SegnbError, match='RANK is not set .start the script with torchrun'): init_dist('pytorch')   # plain python, not under torchrun


def test_nodelist():
    assert expand_nodelist('node[01-03,07],gpu5') == ['node01', 'node02', 'node03', 'node07', 'gpu5']
    assert expand_nodelist('n[098-101]') == ['n098', 'n099', 'n100', 'n101']
    assert expand_nodelist(' a1,b[2],c ') == ['a1', 'b2', 'c']


def test_scontrol_fallback(tmp_path, monkeypatch):
    "An unknown node-list syntax goes to scontrol when it exists, and to a one-line error when it does not."
    monkeypatch.setenv('PATH', str(tmp_path))
    with pytest.raises(SegnbError, match='scontrol is not available'): slurm_master_addr('n[1-9:2]')
    fake = tmp_path / 'scontrol'
    fake.write_text('#!/bin/sh\n[ "$1 $2 $3" = "show hostnames n[1-9:2]" ] && printf "n1\\nn3\\n"\n')
    fake.chmod(0o755)
    assert slurm_master_addr('n[1-9:2]') == 'n1'
    assert slurm_master_addr('x[5-6]') == 'x5'   # parsed here, scontrol not asked
    fake.write_text('#!/bin/sh\nexit 1\n')
    with pytest.raises(SegnbError, match='scontrol cannot expand'): slurm_master_addr('n[1-9:2]')
