"""What a run must write: a work_dir that is a file, lies under a file, or cannot be written is one line naming it,
before any work; a checkpoint write that hits the file-size limit (as a full disk would) is one line naming the
checkpoint, older checkpoints survive, and no partial file is left; the user's own config is never overwritten."""
import os, os.path as osp, resource, signal, subprocess, sys
import pytest
from faults import tiny_config, subprocess_env


@pytest.fixture(scope='module')
def cfg(tmp_path_factory):
    d = tmp_path_factory.mktemp('workdir')
    return tiny_config(d / 'tiny.py', d / 'data')


def train(cfg, work_dir, *extra, preexec=None, timeout=180):
    cmd = [sys.executable, '-m', 'segnb.train', cfg, '--work-dir', str(work_dir)] + list(extra)
    return subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=timeout, preexec_fn=preexec)


def one_line_error(p, *expect):
    lines = p.stderr.strip().splitlines()
    assert p.returncode != 0, p.stderr
    assert 'Traceback' not in p.stderr, p.stderr
    assert lines and 'error' in lines[-1] and all(e.lower() in lines[-1].lower() for e in expect), p.stderr


def test_work_dir_is_a_file(cfg, tmp_path):
    f = tmp_path / 'results.txt'; f.write_text('my results\n')
    one_line_error(train(cfg, f), str(f), 'not a directory')
    assert f.read_text() == 'my results\n'


def test_work_dir_under_a_file(cfg, tmp_path):
    f = tmp_path / 'results.txt'; f.write_text('my results\n')
    one_line_error(train(cfg, f / 'work'), str(f / 'work'), 'cannot be written')
    assert f.read_text() == 'my results\n'


@pytest.mark.skipif(not osp.isdir('/proc/self'), reason='needs /proc')
def test_work_dir_not_writable(cfg):
    one_line_error(train(cfg, '/proc/segnb-work'), '/proc/segnb-work', 'cannot be written')


def test_config_in_work_dir_is_kept(cfg, tmp_path):
    own = tmp_path / 'tiny.py'; text = open(cfg).read() + '# my notes\n'; own.write_text(text)
    p = train(str(own), tmp_path, '--cfg-options', 'runner.max_iters=3', 'checkpoint_config.interval=3', '--no-validate')
    assert p.returncode == 0, p.stderr
    assert own.read_text() == text and (tmp_path / 'iter_3.pth').exists()


def _small_files():
    "In the child: files of at most 900 kB (the tiny model's checkpoint is larger), and EFBIG instead of SIGXFSZ."
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (900_000, 900_000))


def test_checkpoint_write_fails_file_too_large(cfg, tmp_path):
    p = train(cfg, tmp_path / 'work', preexec=_small_files)
    one_line_error(p, 'File too large', str(tmp_path / 'work' / 'iter_3.pth'))
    left = sorted(os.listdir(tmp_path / 'work'))
    assert not [f for f in left if f.endswith('.tmp')] and 'iter_3.pth' not in left, left
