"""Run notebooks top to bottom as `nbdev_test --path NB` does, each in a fresh process, a few at a time.

    python tools/run_notebooks.py [-j JOBS] [--record] [NOTEBOOK ...]    (default: every nbs/*.ipynb)

Each notebook must get a process of its own: a lesson's cells and the module it exports register the same classes,
so two notebooks in one process would meet each other's registrations (this is why test.sh does not run one
`nbdev_test` over the whole folder, which reuses its worker processes). Starting a fresh Python for each notebook
costs about five seconds before the first cell runs, almost all of it importing torch, torchvision and IPython, and
most notebooks run for less than that.

So this runner imports those libraries once, in a parent that runs no notebook code, and forks one child per
notebook. A forked child starts with the libraries already in memory and nothing else: no segnb module, no
registry, no notebook state. It then calls nbdev's own `test_nb` with the flags `nbdev_test` would pass, so the
cells that run or are skipped are exactly nbdev_test's.

The slowest notebooks are started first (timings from `tools/notebook_seconds.json`, rewritten by `--record`), so
that no long notebook is left running alone at the end. The first failure prints its traceback and stops the run.
"""
import argparse, atexit, json, os, sys, tempfile, time
import multiprocessing as mp
from multiprocessing.connection import wait
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMES = ROOT/'tools'/'notebook_seconds.json'


def _child(nb: Path, log: Path, skip_flags, basepath):
    "Run one notebook in this forked process; its stdout is dropped and its stderr kept in `log`."
    from nbdev.test import test_nb
    out = os.open(os.devnull, os.O_WRONLY); err = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(out, 1); os.dup2(err, 2)
    ok, _ = test_nb(nb, skip_flags=skip_flags, force_flags=[], basepath=basepath)
    atexit._run_exitfuncs()  # as a Python that ends normally would (multiprocessing's children skip atexit)
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0 if ok else 1)


def run(notebooks, jobs=2, record=False):
    import torch, torchvision, numpy, PIL.Image, IPython  # noqa: F401  the imports every child shares
    import nbdev.test  # noqa: F401
    from nbdev.config import get_config
    cfg = get_config()
    skip_flags = cfg.tst_flags.split()
    known = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    # unknown notebooks count as slow, so a new one is never the last to start
    todo = sorted(notebooks, key=lambda p: -known.get(p.name, float('inf')))
    os.chdir(cfg.nbs_path)
    ctx, logs = mp.get_context('fork'), Path(tempfile.mkdtemp(prefix='segnb-nbs-'))
    running, seconds, failed = {}, {}, None
    while (todo and failed is None) or running:
        while todo and failed is None and len(running) < jobs:
            nb = todo.pop(0)
            p = ctx.Process(target=_child, args=(nb, logs/f'{nb.name}.err', skip_flags, cfg.config_path))
            p.start(); running[p.sentinel] = (p, nb, time.time())
        for s in wait(list(running)):
            p, nb, start = running.pop(s)
            p.join(); seconds[nb.name] = round(time.time() - start, 1)
            if p.exitcode == 0: print(f'ok   {nb.relative_to(ROOT)} ({seconds[nb.name]:.0f}s)', flush=True)
            elif failed is None:
                failed = nb
                print(f'FAIL {nb.relative_to(ROOT)} (exit code {p.exitcode})', flush=True)
                print((logs/f'{nb.name}.err').read_text(), flush=True)
    if record and failed is None:
        TIMES.write_text(json.dumps(dict(sorted({**known, **seconds}.items())), indent=0) + '\n')
    return failed is None


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='*', type=Path, help='notebooks to run (default: nbs/*.ipynb)')
    ap.add_argument('-j', '--jobs', type=int, default=2, help='notebooks run at once (default: 2)')
    ap.add_argument('--record', action='store_true', help=f'write the measured times to {TIMES.relative_to(ROOT)}')
    a = ap.parse_args()
    nbs = [p.resolve() for p in a.notebooks] or sorted((ROOT/'nbs').glob('*.ipynb'))
    sys.exit(0 if run(nbs, a.jobs, a.record) else 1)
