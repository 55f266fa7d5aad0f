"""Two nodes on one machine: tools/dist_train.sh started twice (NNODES=2, NODE_RANK=0/1), one process each, gloo on CPU."""
import os, signal, socket, subprocess, sys
from pathlib import Path
import pytest
from segnb.data import make_shapes
from segnb.train import DEFAULT_CONFIG

ROOT = Path(__file__).parent.parent
DIST_TRAIN = ROOT / 'tools' / 'dist_train.sh'
LAUNCH_KEYS = ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'GROUP_RANK',
               'TORCHELASTIC_RUN_ID', 'TORCHELASTIC_RESTART_COUNT', 'NNODES', 'NODE_RANK', 'PORT')
ITERS, NUM_TRAIN, NUM_VAL = 2, 4, 2


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def node_env(node_rank, port):
    "This environment without launcher variables, one thread per process, torchrun of this Python first on PATH."
    e = {k: v for k, v in os.environ.items() if k not in LAUNCH_KEYS}
    path = os.pathsep.join([str(Path(sys.executable).parent), e.get('PATH', '')])
    return {**e, 'PATH': path, 'OMP_NUM_THREADS': '1', 'NNODES': '2', 'NODE_RANK': str(node_rank),
            'PORT': str(port), 'MASTER_ADDR': '127.0.0.1'}


def cfg_options(data_root):
    opts = [f'runner.max_iters={ITERS}', f'checkpoint_config.interval={ITERS}', f'evaluation.interval={ITERS}',
            'log_config.interval=1', 'data.samples_per_gpu=2', 'data.workers_per_gpu=0']
    for split in ('train', 'val', 'test'):
        opts += [f'data.{split}.data_root={data_root}', f'data.{split}.num_train={NUM_TRAIN}',
                 f'data.{split}.num_val={NUM_VAL}']
    return ['--cfg-options', *opts]


@pytest.mark.skipif(sys.platform == 'win32', reason='a bash script')
def test_two_nodes_on_localhost(tmp_path):
    assert os.access(DIST_TRAIN, os.X_OK), 'tools/dist_train.sh is not executable'
    make_shapes(str(tmp_path / 'shapes'), num_train=NUM_TRAIN, num_val=NUM_VAL, progress=False)
    port, procs = free_port(), []
    for node in (0, 1):   # the default config, GPUS=1: one process per node
        cmd = [str(DIST_TRAIN), DEFAULT_CONFIG, '1', '--work-dir', str(tmp_path / f'node{node}'), '--seed', '0',
               *cfg_options(tmp_path / 'shapes')]
        procs.append(subprocess.Popen(cmd, cwd=tmp_path, env=node_env(node, port), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, start_new_session=True))
    outs = []
    try:
        for p in procs: outs.append(p.communicate(timeout=150)[0])
    except subprocess.TimeoutExpired:
        for p in procs:
            if p.poll() is None: os.killpg(p.pid, signal.SIGKILL)
        pytest.fail('two-node run timed out:\n' + '\n'.join(p.communicate()[0][-2000:] for p in procs))
    assert [p.returncode for p in procs] == [0, 0], '\n'.join(o[-3000:] for o in outs)
    wd0, wd1 = tmp_path / 'node0', tmp_path / 'node1'
    assert (wd0 / f'iter_{ITERS}.pth').exists() and os.readlink(wd0 / 'latest.pth') == f'iter_{ITERS}.pth'
    logs = sorted(wd0.glob('*.log'))
    assert len(logs) == 1 and len(list(wd0.glob('*.log.json'))) == 1
    text = logs[0].read_text()
    assert 'Distributed training: True' in text and 'DDP: 2 processes x 2 samples = total batch size 4' in text
    assert f'Iter [{ITERS}/{ITERS}]' in text
    assert not list(wd1.glob('*.pth')) and not list(wd1.glob('*.log*'))   # node 1 (rank 1) writes nothing
