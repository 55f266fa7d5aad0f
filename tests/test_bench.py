"""`python -m segnb.bench` as a user runs it: each command prints JSON lines with the documented keys (no speed thresholds)."""
import json, subprocess, sys
import pytest

MACHINE_KEYS = {'cpus', 'torch_threads', 'device', 'load1'}


def bench(*args, timeout=120):
    "Run `python -m segnb.bench ARGS`; its JSON lines, parsed."
    out = subprocess.run([sys.executable, '-m', 'segnb.bench', *args], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines, 'no output'
    return [json.loads(line) for line in lines]


def check(line, benchmark, keys):
    assert line['benchmark'] == benchmark
    assert set(keys) <= set(line), set(keys) - set(line)
    assert MACHINE_KEYS <= set(line['machine'])
    for k in keys:
        if isinstance(line[k], float): assert line[k] == line[k] and abs(line[k]) != float('inf'), (k, line[k])


def test_config():
    [line] = bench('config', '--config-repeat', '3')
    check(line, 'config', ['cold_ms', 'warm_ms', 'configs'])
    assert line['configs'] >= 20 and line['cold_ms'] > 0 and line['warm_ms'] > 0


def test_overhead():
    [line] = bench('overhead', '--iters', '30', '--repeats', '1')
    check(line, 'overhead', ['ratio', 'ratios', 'median_ratio', 'loop_its', 'runner_its', 'overhead_us', 'iters', 'threads', 'cpu_share'])
    assert line['iters'] == 30 and line['loop_its'] > 0 and line['runner_its'] > 0
    assert line['median_ratio'] == pytest.approx(line['ratios'][0], rel=1e-3) and line['threads'] == 1
    assert line['ratio'] == pytest.approx(line['loop_its'] / line['runner_its'], rel=1e-2)


def test_ddp_worker_alone_one_thread():
    [line] = bench('ddp-worker', '--iters', '2', '--batch-size', '1', '--size', '32', '--width', '4')
    assert (line['rank'], line['world_size'], line['threads']) == (0, 1, 1)
    assert line['images_per_s'] > 0

