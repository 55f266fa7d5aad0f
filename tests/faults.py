"""Fault injection for the reliability tests, and the tiny Shapes config they train.

A test config loads this module with `custom_imports=dict(imports=['faults'])` (tests/ on PYTHONPATH) and adds
`custom_hooks=[dict(type='FaultHook')]`. The hook does nothing unless the test sets one of these variables:
- `FAULT_PAUSE=iter:N`  after iteration N, touch `FAULT_MARKER` and wait (until a stop signal, at most 60 s);
- `FAULT_PAUSE=write:N` the write of the checkpoint of iteration N stops halfway (half the bytes on disk, not yet
  renamed), touches `FAULT_MARKER` and waits: the test kills the process in the middle of a checkpoint write;
- `FAULT_CRASH=R:N:how` on rank R, after iteration N, on the first attempt only (`TORCHELASTIC_RESTART_COUNT` 0):
  `how=raise` raises RuntimeError, `how=exit` ends the process with `os._exit(3)`;
- `FAULT_NAN=N`         the images of iteration N become NaN, so its loss is NaN.
The library has no test switches: all of this lives here."""
import io, os, time
import torch
import segnb.checkpoint as R
from segnb.hooks import Hook
from segnb.registry import HOOKS

HERE = os.path.dirname(os.path.abspath(__file__))


def touch(path):
    if path: open(path, 'w').close()


def half_write(n, marker, orig):
    "A `write_payload` that, for the checkpoint of iteration `n`, writes half the bytes and hangs."
    def write(obj, f):
        if not (isinstance(obj, dict) and obj.get('meta', {}).get('iter') == n): return orig(obj, f)
        buf = io.BytesIO(); orig(obj, buf); data = buf.getvalue()
        f.write(data[:len(data) // 2]); f.flush(); os.fsync(f.fileno())
        touch(marker); time.sleep(60)
        raise RuntimeError('FaultHook: the test should have killed this process during the checkpoint write')
    return write


@HOOKS.register_module()
class FaultHook(Hook):
    "Pause, crash or poison the data at a chosen iteration, as the FAULT_* variables say (see the module doc)."
    def __init__(self):
        self.pause, self.marker = os.environ.get('FAULT_PAUSE', ''), os.environ.get('FAULT_MARKER')
        self.crash, self.nan = os.environ.get('FAULT_CRASH', ''), os.environ.get('FAULT_NAN')

    def before_run(self, runner):
        if self.pause.startswith('write:') and runner.rank == 0:
            R.write_payload = half_write(int(self.pause[6:]), self.marker, R.write_payload)

    def before_train_iter(self, runner):
        if self.nan and runner.iter + 1 == int(self.nan): runner.data_batch['img'].fill_(float('nan'))

    def after_train_iter(self, runner):
        n = runner.iter + 1
        if self.pause == f'iter:{n}':
            if runner.rank == 0: touch(self.marker)
            t = time.time()
            while runner.stop_signal is None and time.time() - t < 60: time.sleep(0.02)
        if self.crash and os.environ.get('TORCHELASTIC_RESTART_COUNT', '0') == '0':
            rank, at, how = self.crash.split(':')
            if runner.rank == int(rank) and n == int(at):
                if how == 'exit': os._exit(3)
                raise RuntimeError(f'FaultHook: rank {rank} fails at iteration {n}')


TINY = """_base_ = [{base!r}]
custom_imports = dict(imports=['faults'])
shp = dict(num_train={num_train}, num_val={num_val}, size=32, seed=0, data_root={data_root!r})
data = dict(samples_per_gpu=2, workers_per_gpu=0, train=shp, val=shp, test=shp)
runner = dict(type='IterBasedRunner', max_iters=12)
checkpoint_config = dict(interval=3, max_keep_ckpts=2)
evaluation = dict(interval=6, metric='mIoU')
log_config = dict(interval=3)
custom_hooks = [dict(type='FaultHook')]
"""


def tiny_config(path, data_root, num_train=16, num_val=4):
    "Write the tiny test config (the default config on 32x32 Shapes images, 12 iterations) to `path`."
    from segnb.train import DEFAULT_CONFIG
    with open(path, 'w') as f:
        f.write(TINY.format(base=DEFAULT_CONFIG, data_root=str(data_root), num_train=num_train, num_val=num_val))
    return str(path)


def subprocess_env(**extra):
    "The environment of a training subprocess: one thread, tests/ importable, plus `extra`."
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=HERE + os.pathsep + os.environ.get('PYTHONPATH', ''))
    for k in ('FAULT_PAUSE', 'FAULT_CRASH', 'FAULT_NAN', 'FAULT_MARKER', 'SEGNB_DEBUG'): env.pop(k, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def final_weights(work_dir, n=12):
    return torch.load(os.path.join(work_dir, f'iter_{n}.pth'), weights_only=True)['state_dict']


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    bad = [k for k in a if not torch.equal(a[k], b[k])]
    assert not bad, f'{len(bad)} tensors differ, e.g. {bad[:3]}'
