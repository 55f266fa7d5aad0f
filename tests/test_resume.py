"""Exact resume through the real command line: runs of `python -m segnb.train` (and under torchrun) are stopped by
SIGTERM, SIGINT and SIGKILL (also in the middle of a checkpoint write), restarted with `--auto-resume`, and must end
with weights bit-identical to an uninterrupted run. Also: elastic restarts after a rank dies, and a NaN loss."""
import glob, os, signal, subprocess, sys, time
import pytest
import torch
from faults import tiny_config, subprocess_env, final_weights, assert_same_weights

SEED = ['--seed', '7', '--deterministic']
TORCHRUN = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2']


@pytest.fixture(scope='module')
def cfg(tmp_path_factory):
    d = tmp_path_factory.mktemp('resume')
    return tiny_config(d / 'tiny.py', d / 'data')


def train_cmd(cfg, work_dir, *extra, dist=False):
    return (TORCHRUN if dist else [sys.executable]) + ['-m', 'segnb.train', cfg, '--work-dir', str(work_dir)] + SEED + list(extra)


def run(cmd, timeout=120, **env):
    p = subprocess.run(cmd, env=subprocess_env(**env), capture_output=True, text=True, timeout=timeout)
    return p


def descendants(pid):
    "Process ids of all descendants of `pid` (read from /proc)."
    children = {}
    for stat in glob.glob('/proc/[0-9]*/stat'):
        try: fields = open(stat).read().rsplit(')', 1)[1].split()
        except OSError: continue
        children.setdefault(int(fields[1]), []).append(int(stat.split('/')[2]))
    out, todo = [], list(children.get(pid, []))
    while todo:
        c = todo.pop(); out.append(c); todo += children.get(c, [])
    return out


def kill_strays(tag):
    "SIGKILL processes whose command line contains `tag` (workers a failed torchrun can leave behind)."
    for f in glob.glob('/proc/[0-9]*/cmdline'):
        try:
            if tag in open(f).read().replace('\0', ' '): os.kill(int(f.split('/')[2]), signal.SIGKILL)
        except OSError: pass


def run_until_marker(cmd, sig, pause, marker, timeout=90):
    "Start `cmd` with FAULT_PAUSE=`pause`, wait for the marker, send `sig` to its whole process group; the result."
    if os.path.exists(marker): os.remove(marker)
    p = subprocess.Popen(cmd, env=subprocess_env(FAULT_PAUSE=pause, FAULT_MARKER=marker), start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t = time.time()
    while not os.path.exists(marker) and p.poll() is None and time.time() - t < timeout: time.sleep(0.02)
    if not os.path.exists(marker):
        p.kill(); raise AssertionError(f'never paused at {pause}: ' + p.communicate()[1][-3000:])
    if sig == signal.SIGKILL:     # the launcher and every worker (torchrun starts workers in their own sessions)
        for pid in [p.pid] + descendants(p.pid): os.kill(pid, sig)
    else: p.send_signal(sig)
    err = p.communicate(timeout=60)[1]
    return p.returncode, err


def latest_iter(work_dir):
    return torch.load(os.path.join(work_dir, 'latest.pth'), weights_only=True)['meta']['iter']


def test_single_process_kills_and_resumes_bit_identical(cfg, tmp_path):
    ref, w, m = tmp_path / 'ref', tmp_path / 'run', str(tmp_path / 'marker')
    ref_run = subprocess.Popen(train_cmd(cfg, ref), env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # 1. SIGTERM after iteration 4: stops there, saves iter_4.pth first, exits 128+15
    rc, err = run_until_marker(train_cmd(cfg, w), signal.SIGTERM, 'iter:4', m)
    assert rc == 128 + signal.SIGTERM, err[-3000:]
    assert latest_iter(w) == 4 and (w / 'iter_4.pth').exists() and 'SIGTERM received' in err
    # 2. SIGKILL in the middle of writing iter_6.pth: a partial temp file, latest.pth still complete (iter 4)
    rc, err = run_until_marker(train_cmd(cfg, w, '--auto-resume'), signal.SIGKILL, 'write:6', m)
    assert rc == -signal.SIGKILL
    assert glob.glob(str(w / '.iter_6.pth.*.tmp')) and not (w / 'iter_6.pth').exists()
    assert latest_iter(w) == 4
    # 3. SIGINT after iteration 8 (iter_6.pth written on the way): saves iter_8.pth, exits 128+2
    rc, err = run_until_marker(train_cmd(cfg, w, '--auto-resume'), signal.SIGINT, 'iter:8', m)
    assert rc == 128 + signal.SIGINT, err[-3000:]
    assert latest_iter(w) == 8
    # 4. SIGKILL in the middle of the run, after iteration 10 (checkpoint of 9 written, not 10)
    rc, err = run_until_marker(train_cmd(cfg, w, '--auto-resume'), signal.SIGKILL, 'iter:10', m)
    assert rc == -signal.SIGKILL and latest_iter(w) == 9
    # 5. to the end
    p = run(train_cmd(cfg, w, '--auto-resume'))
    assert p.returncode == 0, p.stderr[-3000:]
    assert 'resumed from' in p.stderr
    assert ref_run.wait(timeout=120) == 0
    assert_same_weights(final_weights(w), final_weights(ref))


@pytest.fixture(scope='module')
def dist_ref(cfg, tmp_path_factory):
    "The uninterrupted torchrun run, started in the background; call the fixture's value for its final weights."
    d = tmp_path_factory.mktemp('dist_ref')
    err = open(d / 'stderr.txt', 'w+')
    p = subprocess.Popen(train_cmd(cfg, d / 'work', dist=True), env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=err)
    def weights():
        assert p.wait(timeout=240) == 0, open(d / 'stderr.txt').read()[-3000:]
        return final_weights(d / 'work')
    yield weights
    if p.poll() is None: p.kill()


def test_torchrun_kill_during_write_then_resume(cfg, tmp_path, dist_ref):
    w, m = tmp_path / 'run', str(tmp_path / 'marker')
    # SIGKILL to torchrun and both workers while rank 0 writes iter_6.pth; then resume to the end
    rc, err = run_until_marker(train_cmd(cfg, w, dist=True), signal.SIGKILL, 'write:6', m)
    assert latest_iter(w) == 3 and glob.glob(str(w / '.iter_6.pth.*.tmp'))
    p = run(train_cmd(cfg, w, '--auto-resume', dist=True), timeout=180)
    assert p.returncode == 0, p.stderr[-3000:]
    assert_same_weights(final_weights(w), dist_ref())


def test_elastic_restart_resumes_by_itself(cfg, tmp_path, dist_ref):
    # rank 1 raises after iteration 5 on the first attempt: every rank exits, the user sees rank 1's error, torchrun
    # restarts both workers, which resume from iter_3.pth by themselves (no --auto-resume) and finish bit-identical
    el = tmp_path / 'elastic'
    try: p = run(TORCHRUN + ['--max-restarts', '1'] + train_cmd(cfg, el)[1:], timeout=240, FAULT_CRASH='1:5:raise')
    finally: kill_strays(str(el))
    assert 'FaultHook: rank 1 fails at iteration 5' in p.stderr
    assert p.returncode == 0, p.stderr[-3000:]
    assert f'resumed from {el / "iter_3.pth"}' in p.stderr
    assert_same_weights(final_weights(el), dist_ref())


def test_failing_rank_stops_every_rank(cfg, tmp_path):
    "Without restarts, a rank that raises ends the job (no hang) and its error is in what the user sees."
    p = run(train_cmd(cfg, tmp_path / 'w', dist=True), timeout=120, FAULT_CRASH='1:2:raise')
    assert p.returncode != 0
    assert 'RuntimeError: FaultHook: rank 1 fails at iteration 2' in p.stderr


@pytest.fixture
def in_process(monkeypatch):
    "Run `segnb.train.main` here: one thread, fresh log handlers (bound to the captured stderr)."
    import logging
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    monkeypatch.delenv('SEGNB_DEBUG', raising=False)
    logger = logging.getLogger('segnb')
    def clear():
        for h in list(logger.handlers): logger.removeHandler(h); h.close()
    clear(); yield; clear()


def test_nan_loss_stops_with_one_line_and_keeps_last_good_checkpoint(cfg, tmp_path, capsys, monkeypatch, in_process):
    from segnb.train import main
    monkeypatch.setenv('FAULT_NAN', '5')
    with pytest.raises(SystemExit) as e: main([cfg, '--work-dir', str(tmp_path), '--no-validate'] + SEED)
    err = capsys.readouterr().err
    assert e.value.code == 1 and 'Traceback' not in err
    line = [l for l in err.splitlines() if l.startswith('segnb: error:')]
    assert len(line) == 1 and 'iteration 5: the loss is not finite' in line[0] and 'decode.loss_ce=nan' in line[0], err[-2000:]
    ckpt = torch.load(tmp_path / 'latest.pth', weights_only=True)
    assert ckpt['meta']['iter'] == 3 and all(torch.isfinite(v).all() for v in ckpt['state_dict'].values() if v.is_floating_point())


def test_nan_loss_skip_goes_on(cfg, tmp_path, capsys, monkeypatch, in_process):
    from segnb.train import main
    monkeypatch.setenv('FAULT_NAN', '5')
    main([cfg, '--work-dir', str(tmp_path), '--no-validate', '--cfg-options', 'optimizer_config.nonfinite=skip'] + SEED)
    err = capsys.readouterr().err
    assert 'iteration 5: the loss is not finite' in err and 'step skipped' in err
    sd = final_weights(tmp_path)
    assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())
