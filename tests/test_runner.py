"""Runner reliability: exact resume after crashes (also during a checkpoint write), SIGTERM, max_keep_ckpts,
non-finite losses, LR values through the runner. Run as a script, this file trains the toy task (used by the
SIGTERM test)."""
import logging, os, os.path as osp, random, signal, subprocess, sys, time

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)   # tiny tensors: one thread is much faster than two spinning ones on a busy machine

import segnb.checkpoint as R   # write_payload: the one function that writes checkpoint bytes
from segnb.errors import SegnbError
from segnb.hooks import Hook, NonFiniteLossError
from segnb.runner import IterBasedRunner, build_runner, find_latest_checkpoint, load_checkpoint

LOGGER = logging.getLogger('segnb.tests')
LOGGER.addHandler(logging.NullHandler()); LOGGER.propagate = False


class ToySeg(torch.utils.data.Dataset):
    def __init__(self, n=16): self.n = n
    def __len__(self): return self.n
    def __getitem__(self, item):
        idx, seed = item if isinstance(item, tuple) else (item, item)
        img = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(idx))
        if torch.rand(1, generator=torch.Generator().manual_seed(seed)) < 0.5: img = img.flip(-1)
        return dict(img=img, gt_semantic_seg=(img.mean(0, keepdim=True) > 0).long())
    def pre_eval(self, preds, indices):
        out = []
        for p, i in zip(preds, indices):
            gt = self[i]['gt_semantic_seg'][0]
            inter = torch.bincount(gt[p == gt].flatten(), minlength=2).double()
            ap, al = torch.bincount(p.flatten(), minlength=2).double(), torch.bincount(gt.flatten(), minlength=2).double()
            out.append((inter, ap + al - inter, ap, al))
        return out
    def evaluate(self, results, logger=None, metric='mIoU'):
        i, u, p, l = (sum(r[k] for r in results) for k in range(4))
        return {'aAcc': float(i.sum() / l.sum()), 'mIoU': float((i / u).mean())}


class ToySampler(torch.utils.data.Sampler):
    def __init__(self, n, seed=0, rank=0, world=1):
        self.n, self.seed, self.epoch, self.start, self.rank, self.world = n, seed, 0, 0, rank, world
    def set_epoch(self, epoch): self.epoch = epoch
    def set_start(self, start): self.start = start
    def __len__(self): return self.n // self.world - self.start
    def __iter__(self):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        mine = list(range(self.rank, self.n, self.world))
        for pos in mine[self.start:]: yield order[pos], self.seed * 1000003 + self.epoch * 1009 + pos


class ToyNet(nn.Module):
    def __init__(self, bad_at=None):
        super().__init__()
        self.conv1, self.drop, self.conv2 = nn.Conv2d(3, 8, 3, padding=1), nn.Dropout(0.2), nn.Conv2d(8, 2, 1)
        self.bad_at, self.calls = bad_at, 0
    def forward(self, img, gt_semantic_seg=None, return_loss=True, **kw):
        logits = self.conv2(self.drop(F.relu(self.conv1(img))))
        if not return_loss: return list(logits.argmax(1).cpu())
        loss = F.cross_entropy(logits, gt_semantic_seg[:, 0])
        self.calls += 1
        if self.bad_at is not None and self.calls in self.bad_at: loss = loss * float('nan')
        return {'decode.loss_ce': loss}
    def train_step(self, data_batch, optimizer=None, **kw):
        losses = self(**data_batch)
        loss = losses['decode.loss_ce']
        return dict(loss=loss, log_vars={'decode.loss_ce': loss.detach(), 'loss': loss.detach()},
                    num_samples=len(data_batch['img']))


def loader(workers=0, rank=0, world=1):
    return torch.utils.data.DataLoader(ToySeg(16), batch_size=4 // world, sampler=ToySampler(16, rank=rank, world=world),
                                       drop_last=True, num_workers=workers)


def make_runner(work_dir, max_iters=14, seed=0, hooks=(), interval=4, keep=-1, nonfinite='stop', bad_at=None):
    torch.manual_seed(seed); random.seed(seed); np.random.seed(seed)
    model = ToyNet(bad_at)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    runner = build_runner(dict(type='IterBasedRunner', max_iters=max_iters),
                          dict(model=model, optimizer=opt, work_dir=work_dir, logger=LOGGER))
    runner.register_training_hooks(dict(policy='poly', power=0.9, min_lr=1e-4, warmup='linear', warmup_iters=3),
                                   dict(nonfinite=nonfinite), dict(interval=interval, max_keep_ckpts=keep),
                                   dict(interval=2, hooks=[dict(type='TextLoggerHook')]))
    for h in hooks: runner.register_hook(h)
    return runner


class CrashAt(Hook):
    def __init__(self, it): self.it = it
    def after_train_iter(self, runner):
        if runner.iter + 1 == self.it: raise RuntimeError('crash')


def weights(runner): return {k: v.clone() for k, v in runner.model.state_dict().items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a: assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    r = make_runner(str(tmp_path_factory.mktemp('ref')))
    r.run([loader()], [('train', 1)])
    return weights(r), r.current_lr()


def resume_to_end(work_dir, **kw):
    r = make_runner(work_dir, seed=99, **kw)
    latest = find_latest_checkpoint(work_dir)
    if latest: r.resume(latest)
    r.run([loader()], [('train', 1)])
    return r


@pytest.mark.parametrize('crash_at', [5, 10, 14])
def test_crash_and_resume_is_bit_identical(tmp_path, reference, crash_at):
    r = make_runner(str(tmp_path), hooks=[CrashAt(crash_at)])
    with pytest.raises(RuntimeError): r.run([loader()], [('train', 1)])
    resumed = resume_to_end(str(tmp_path))
    assert_same(weights(resumed), reference[0])
    assert resumed.current_lr() == reference[1]


def test_crash_during_checkpoint_write(tmp_path, reference, monkeypatch):
    r = make_runner(str(tmp_path))
    real = R.write_payload
    def half_then_die(obj, f):
        if obj['meta']['iter'] == 8: f.write(b'PK\x03\x04 partial'); raise KeyboardInterrupt('killed while writing')
        real(obj, f)
    monkeypatch.setattr(R, 'write_payload', half_then_die)
    with pytest.raises(KeyboardInterrupt): r.run([loader()], [('train', 1)])
    monkeypatch.setattr(R, 'write_payload', real)
    assert os.readlink(tmp_path / 'latest.pth') == 'iter_4.pth'
    assert not (tmp_path / 'iter_8.pth').exists() and not list(tmp_path.glob('.*.tmp'))
    assert torch.load(tmp_path / 'latest.pth', weights_only=True)['meta']['iter'] == 4
    assert_same(weights(resume_to_end(str(tmp_path))), reference[0])


def test_resume_with_loader_workers(tmp_path, reference):
    r = make_runner(str(tmp_path), hooks=[CrashAt(6)])
    with pytest.raises(RuntimeError): r.run([loader(workers=2)], [('train', 1)])
    r = make_runner(str(tmp_path), seed=5)
    r.resume(find_latest_checkpoint(str(tmp_path)))
    r.run([loader(workers=2)], [('train', 1)])
    assert_same(weights(r), reference[0])


def test_checkpoint_round_trip_weights_only(tmp_path):
    r = make_runner(str(tmp_path), max_iters=4)
    r.run([loader()], [('train', 1)])
    ck = torch.load(tmp_path / 'iter_4.pth', weights_only=True)
    assert ck['meta']['iter'] == 4 and ck['meta']['data'] == [dict(epoch=1, position=0)]
    assert set(ck) >= {'meta', 'state_dict', 'optimizer', 'rng', 'hooks'}
    assert all(not k.startswith('module.') for k in ck['state_dict'])
    m = ToyNet(); load_checkpoint(m, str(tmp_path / 'iter_4.pth'), strict=True)
    assert_same(m.state_dict(), r.model.state_dict())


def test_truncated_and_foreign_files(tmp_path):
    r = make_runner(str(tmp_path), max_iters=4); r.run([loader()], [('train', 1)])
    data = (tmp_path / 'iter_4.pth').read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[: len(data) // 2])
    with pytest.raises(SegnbError, match='cut.pth'): load_checkpoint(ToyNet(), str(tmp_path / 'cut.pth'))
    (tmp_path / 'text.pth').write_text('hello')
    with pytest.raises(SegnbError, match='text.pth'): load_checkpoint(ToyNet(), str(tmp_path / 'text.pth'))
    torch.save(nn.Linear(2, 2), tmp_path / 'module.pth')   # a pickled class: refused by weights_only
    with pytest.raises(SegnbError, match='module.pth'): load_checkpoint(ToyNet(), str(tmp_path / 'module.pth'))
    with pytest.raises(SegnbError, match='missing.pth'): load_checkpoint(ToyNet(), str(tmp_path / 'missing.pth'))
    # auto-resume skips a broken latest.pth copy and takes the newest complete numbered checkpoint
    os.remove(tmp_path / 'latest.pth'); (tmp_path / 'latest.pth').write_bytes(data[:100])
    assert find_latest_checkpoint(str(tmp_path)) == osp.realpath(tmp_path / 'iter_4.pth')


def test_max_keep_ckpts_spares_resumed_and_best(tmp_path):
    r = make_runner(str(tmp_path), max_iters=8, interval=2)
    r.run([loader()], [('train', 1)])
    r = make_runner(str(tmp_path), max_iters=16, interval=2, keep=2)
    r.resume(str(tmp_path / 'iter_4.pth'))
    r.meta['hook_msgs']['best_ckpt'] = str(tmp_path / 'iter_6.pth')
    r.run([loader()], [('train', 1)])
    names = sorted(f for f in os.listdir(tmp_path) if f.startswith('iter_'))
    assert names == ['iter_14.pth', 'iter_16.pth', 'iter_4.pth', 'iter_6.pth']


def test_nonfinite_stop_keeps_last_good_checkpoint(tmp_path):
    r = make_runner(str(tmp_path), bad_at={7})
    with pytest.raises(NonFiniteLossError, match=r'iteration 7: the loss is not finite \(decode.loss_ce=nan'):
        r.run([loader()], [('train', 1)])
    ck = torch.load(tmp_path / 'latest.pth', weights_only=True)
    assert ck['meta']['iter'] == 4 and all(torch.isfinite(v).all() for v in ck['state_dict'].values())


def test_nonfinite_skip(tmp_path):
    r = make_runner(str(tmp_path), bad_at={3, 5}, nonfinite='skip')
    r.run([loader()], [('train', 1)])
    assert all(torch.isfinite(v).all() for v in r.model.state_dict().values())
    assert torch.load(tmp_path / 'latest.pth', weights_only=True)['hooks']['OptimizerHook']['skipped'] == 2


def test_lr_config_errors_name_the_key(tmp_path):
    r = make_runner(str(tmp_path))
    with pytest.raises(SegnbError, match='policy'): r.register_training_hooks(dict(power=0.9))
    with pytest.raises(SegnbError, match="lr_config.policy='sqrt'"): r.register_training_hooks(dict(policy='sqrt'))


def test_lr_through_runner_step_policy(tmp_path):
    seen = []
    class Spy(Hook):
        def after_train_iter(self, runner): seen.append([g['lr'] for g in runner.optimizer.param_groups])
    model = ToyNet()
    opt = torch.optim.SGD([{'params': model.conv1.parameters()}, {'params': model.conv2.parameters(), 'lr': 0.2}], lr=0.1)
    r = IterBasedRunner(model, opt, work_dir=str(tmp_path), logger=LOGGER, max_iters=8)
    r.register_training_hooks(dict(policy='step', step=[3, 6], gamma=0.5, warmup='constant', warmup_iters=2, warmup_ratio=0.1),
                              dict())
    r.register_hook(Spy())
    r.run([loader()], [('train', 1)])
    expect = [[0.01, 0.02], [0.01, 0.02], [0.1, 0.2], [0.05, 0.1], [0.05, 0.1], [0.05, 0.1], [0.025, 0.05], [0.025, 0.05]]
    for got, exp in zip(seen, expect): assert got == pytest.approx(exp, rel=1e-12)


def test_sigterm_stops_after_iteration_and_checkpoints(tmp_path, reference):
    ready = tmp_path / 'ready'
    p = subprocess.Popen([sys.executable, __file__, str(tmp_path), str(ready)], stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not ready.exists() and p.poll() is None and time.time() - t0 < 30: time.sleep(0.05)
    assert ready.exists(), p.stderr.read() if p.poll() is not None else 'child never got to iteration 5'
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert 'SIGTERM received' in err
    ck = torch.load(tmp_path / 'latest.pth', weights_only=True)
    assert 5 <= ck['meta']['iter'] < 14
    assert_same(weights(resume_to_end(str(tmp_path))), reference[0])


@pytest.mark.parametrize('amp', ['bf16', 'fp16'])
def test_amp_runs_and_resumes_scaler(tmp_path, amp):
    r = make_runner(str(tmp_path), max_iters=8, hooks=[CrashAt(6)])
    r.amp = amp
    with pytest.raises(RuntimeError): r.run([loader()], [('train', 1)])
    ck = torch.load(tmp_path / 'iter_4.pth', weights_only=True)
    assert ('scaler' in ck) == (amp == 'fp16')
    if amp == 'fp16': assert ck['scaler']['scale'] > 0
    r2 = make_runner(str(tmp_path), max_iters=8); r2.amp = amp
    r2.resume(str(tmp_path / 'iter_4.pth')); r2.run([loader()], [('train', 1)])
    opt_hook = next(h for h in r2.hooks if type(h).__name__ == 'OptimizerHook')
    assert opt_hook.scaler.is_enabled() == (amp == 'fp16')
    assert all(torch.isfinite(v).all() for v in r2.model.state_dict().values())


def test_custom_hooks_and_logger_hooks_from_config(tmp_path):
    model = ToyNet()
    r = IterBasedRunner(model, torch.optim.SGD(model.parameters(), lr=0.01), work_dir=str(tmp_path), logger=LOGGER, max_iters=2)
    r.register_training_hooks(dict(policy='poly', power=0.9), dict(), dict(interval=1),
                              dict(interval=1, hooks=[dict(type='TextLoggerHook')]),
                              custom_hooks_config=[dict(type='EMAHook', priority=49), dict(type='EmptyCacheHook', priority='LOWEST')])
    names = [type(h).__name__ for h in r.hooks]
    assert names == ['PolyLrUpdaterHook', 'OptimizerHook', 'EMAHook', 'CheckpointHook', 'IterTimerHook', 'TextLoggerHook', 'EmptyCacheHook']
    assert r.hooks[-2].interval == 1 and r.hooks[-2].by_epoch is False and r.hooks[3].by_epoch is False
    with pytest.raises(SegnbError, match='TextLogerHook'):
        r.register_training_hooks(None, log_config=dict(interval=1, hooks=[dict(type='TextLogerHook')]))


def _epoch_runner(work_dir, seed=0, hooks=()):
    torch.manual_seed(seed); random.seed(seed); np.random.seed(seed)
    model = ToyNet()
    r = build_runner(dict(type='EpochBasedRunner', max_epochs=3),
                     dict(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                          work_dir=work_dir, logger=LOGGER))
    r.register_training_hooks(dict(policy='step', step=[2], warmup='linear', warmup_iters=3), dict(), dict(interval=1),
                              dict(interval=2, hooks=[dict(type='TextLoggerHook')]))
    for h in hooks: r.register_hook(h)
    return r


class StopAt(Hook):
    def __init__(self, it): self.it = it
    def after_train_iter(self, runner):
        if runner.iter + 1 == self.it: runner.stop_signal = signal.SIGTERM


def test_epoch_runner_resume_mid_epoch_and_at_epoch_end(tmp_path):
    ref = _epoch_runner(str(tmp_path / 'ref')); ref.run([loader()], [('train', 1)])
    assert (ref.epoch, ref.iter) == (3, 12)
    r = _epoch_runner(str(tmp_path / 'a'), hooks=[StopAt(6)]); r.run([loader()], [('train', 1)])
    assert os.readlink(tmp_path / 'a' / 'latest.pth') == 'epoch_1_iter_6.pth'
    r = _epoch_runner(str(tmp_path / 'a'), seed=4); r.resume(find_latest_checkpoint(str(tmp_path / 'a')))
    r.run([loader()], [('train', 1)])
    assert_same(weights(r), weights(ref))
    r = _epoch_runner(str(tmp_path / 'b'), hooks=[CrashAt(7)])
    with pytest.raises(RuntimeError): r.run([loader()], [('train', 1)])
    r = _epoch_runner(str(tmp_path / 'b'), seed=4); r.resume(find_latest_checkpoint(str(tmp_path / 'b')))
    r.run([loader()], [('train', 1)])
    assert_same(weights(r), weights(ref))
    assert sorted(f for f in os.listdir(tmp_path / 'b') if f.endswith('.pth')) == ['epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth', 'latest.pth']


def test_fp16_optimizer_hook_from_mmseg_config(tmp_path):
    model = ToyNet()
    r = IterBasedRunner(model, torch.optim.SGD(model.parameters(), lr=0.01), work_dir=str(tmp_path), logger=LOGGER, max_iters=2)
    r.register_training_hooks(dict(policy='fixed'), dict(type='Fp16OptimizerHook', loss_scale=512., distributed=False))
    r.run([loader()], [('train', 1)])
    hook = r.hooks[1]
    assert r.amp == 'fp16' and hook.scaler.is_enabled() and hook.scaler.get_scale() == 512.


def test_ema_hook_state_survives_resume(tmp_path):
    from segnb.hooks import EMAHook
    ref = make_runner(str(tmp_path / 'a'), hooks=[EMAHook(momentum=0.1, warm_up=2)])
    ref.run([loader()], [('train', 1)])
    r = make_runner(str(tmp_path / 'b'), hooks=[EMAHook(momentum=0.1, warm_up=2), CrashAt(10)])
    with pytest.raises(RuntimeError): r.run([loader()], [('train', 1)])
    r = make_runner(str(tmp_path / 'b'), seed=3, hooks=[EMAHook(momentum=0.1, warm_up=2)])
    r.resume(find_latest_checkpoint(str(tmp_path / 'b'))); r.run([loader()], [('train', 1)])
    a, b = ref.model.state_dict(), r.model.state_dict()
    assert any(k.startswith('ema_') for k in a)
    assert_same(a, b)
    assert not torch.equal(a['ema_conv1_weight'], a['conv1.weight'])


def test_gradient_cumulative_matches_bigger_batch(tmp_path):
    from segnb.hooks import GradientCumulativeOptimizerHook
    torch.manual_seed(0)
    m1 = nn.Conv2d(3, 2, 1); m2 = nn.Conv2d(3, 2, 1); m2.load_state_dict(m1.state_dict())
    x, y = torch.randn(4, 3, 4, 4), torch.randint(0, 2, (4, 1, 4, 4))
    class Net(nn.Module):
        def __init__(self, m): super().__init__(); self.m = m
        def train_step(self, b, optimizer=None):
            loss = F.cross_entropy(self.m(b['img']), b['gt_semantic_seg'][:, 0])
            return dict(loss=loss, log_vars={'loss': loss.detach()}, num_samples=len(b['img']))
    halves = [dict(img=x[:2], gt_semantic_seg=y[:2]), dict(img=x[2:], gt_semantic_seg=y[2:])]
    r = IterBasedRunner(Net(m1), torch.optim.SGD(m1.parameters(), lr=0.1), logger=LOGGER, max_iters=2)
    r.register_hook(GradientCumulativeOptimizerHook(cumulative_iters=2))
    r.run([halves], [('train', 1)])
    opt = torch.optim.SGD(m2.parameters(), lr=0.1)
    F.cross_entropy(m2(x), y[:, 0]).backward(); opt.step()
    for p, q in zip(m1.parameters(), m2.parameters()): assert torch.allclose(p, q, atol=1e-6)


def test_sigkill_then_auto_resume_is_bit_identical(tmp_path, reference):
    ready = tmp_path / 'ready'
    p = subprocess.Popen([sys.executable, __file__, str(tmp_path), str(ready), '9'], stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not ready.exists() and p.poll() is None and time.time() - t0 < 30: time.sleep(0.01)
    assert ready.exists(), p.stderr.read() if p.poll() is not None else 'child never got to iteration 9'
    p.kill(); p.communicate(timeout=30)
    assert p.returncode == -signal.SIGKILL
    assert torch.load(tmp_path / 'latest.pth', weights_only=True)['meta']['iter'] in (8, 12)   # killed mid-run
    assert_same(weights(resume_to_end(str(tmp_path))), reference[0])


class SlowAfter(Hook):
    "Child side of the signal tests: announce iteration `at`, then go slowly so the signal lands mid-run."
    def __init__(self, ready, at=5): self.ready, self.at = ready, at
    def after_train_iter(self, runner):
        if runner.iter + 1 == self.at: open(self.ready, 'w').close()
        if runner.iter + 1 >= self.at: time.sleep(0.2)


class DDPToy(torch.nn.parallel.DistributedDataParallel):
    def train_step(self, data_batch, optimizer=None, **kw):
        loss = self(**data_batch)['decode.loss_ce']
        return dict(loss=loss, log_vars={'loss': loss.detach()}, num_samples=len(data_batch['img']))


class StopOnRank1(Hook):
    def after_train_iter(self, runner):
        if runner.rank == 1 and runner.iter + 1 == 6: runner.stop_signal = signal.SIGTERM


def _ddp_run(rank, work_dir, stop=False, resume=False):
    from segnb.hooks import DistEvalHook
    torch.manual_seed(0); random.seed(rank); np.random.seed(rank)
    model = DDPToy(ToyNet())
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    r = IterBasedRunner(model, opt, work_dir=work_dir, logger=LOGGER, max_iters=12)
    r.register_training_hooks(dict(policy='poly', power=0.9), dict(), dict(interval=4),
                              dict(interval=3, hooks=[dict(type='TextLoggerHook')]))
    val = torch.utils.data.DataLoader(ToySeg(10), batch_size=1, sampler=list(range(rank, 10, 2)))
    r.register_hook(DistEvalHook(val, interval=12, save_best='mIoU'), 'LOW')
    if stop: r.register_hook(StopOnRank1())
    if resume: r.resume(find_latest_checkpoint(work_dir))
    r.run([loader(rank=rank, world=2)], [('train', 1)])


def _ddp_worker(rank, init, tmp):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=init, rank=rank, world_size=2)
    _ddp_run(rank, f'{tmp}/ref')                  # uninterrupted
    _ddp_run(rank, f'{tmp}/run', stop=True)       # rank 1 gets a stop request after iteration 6
    if rank == 0: torch.save(torch.load(f'{tmp}/run/latest.pth', weights_only=True)['meta'], f'{tmp}/stopped_meta.pth')
    _ddp_run(rank, f'{tmp}/run', resume=True)     # resumed to the end
    dist.barrier()
    dist.destroy_process_group()


def test_two_processes_stop_resume_and_dist_eval(tmp_path):
    import json
    import torch.multiprocessing as mp
    mp.spawn(_ddp_worker, args=(f'file://{tmp_path}/init', str(tmp_path)), nprocs=2)
    meta = torch.load(tmp_path / 'stopped_meta.pth', weights_only=True)
    assert meta['iter'] == 6                                   # both ranks stopped after iteration 6
    a = torch.load(tmp_path / 'ref' / 'iter_12.pth', weights_only=True)
    b = torch.load(tmp_path / 'run' / 'iter_12.pth', weights_only=True)
    assert len(a['rng']) == 2
    assert_same(a['state_dict'], b['state_dict'])
    val = [json.loads(l) for f in (tmp_path / 'ref').glob('*.log.json') for l in open(f) if '"val"' in l]
    m = ToyNet(); m.load_state_dict(a['state_dict']); m.eval()
    ds = ToySeg(10)
    with torch.no_grad(): preds = [m(ds[i]['img'][None], return_loss=False)[0] for i in range(10)]
    expect = ds.evaluate(ds.pre_eval(preds, list(range(10))))
    assert val[-1]['mIoU'] == pytest.approx(expect['mIoU'], abs=1e-5)
    assert (tmp_path / 'ref' / 'best_mIoU_iter_12.pth').exists()


if __name__ == '__main__':
    work_dir, ready = sys.argv[1], sys.argv[2]
    LOGGER.addHandler(logging.StreamHandler())
    r = make_runner(work_dir, hooks=[SlowAfter(ready, int(sys.argv[3]) if len(sys.argv) > 3 else 5)])
    r.run([loader()], [('train', 1)])
