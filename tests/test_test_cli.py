"""`python -m segnb.test`'s flags: --show, --format-only, --out/--show-dir/--tmpdir checked before any work, and the
two collection modes of `multi_gpu_test` (--gpu-collect, --tmpdir) under a 2-process gloo torchrun."""
import os, sys
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from test_train_e2e import run, torchrun
from segnb.config import Config
from segnb.data import make_shapes
from segnb.models import build_segmentor
from segnb.train import DEFAULT_CONFIG
import segnb.test as segtest

NUM_VAL = 4


@pytest.fixture(autouse=True)
def keep_threads():
    "segnb.test sets torch's thread count for the run: put it back, so later tests in this process compute alike."
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    "A tiny Shapes set and a checkpoint of an untrained model of the default config."
    base = tmp_path_factory.mktemp('testcli')
    make_shapes(str(base / 'shapes'), num_train=2, num_val=NUM_VAL, progress=False)
    cfg = Config.fromfile(DEFAULT_CONFIG); cfg.model.pretrained = None
    torch.manual_seed(0)
    model = build_segmentor(cfg.model, test_cfg=cfg.get('test_cfg'))
    torch.save(dict(state_dict=model.state_dict(), meta={}), base / 'model.pth')
    opts = ['--cfg-options', 'data.workers_per_gpu=0'] + [
        f'data.{s}.{k}' for s in ('train', 'val', 'test') for k in (f'data_root={base / "shapes"}', 'num_train=2', f'num_val={NUM_VAL}')]
    return base, [DEFAULT_CONFIG, str(base / 'model.pth')], opts


def one_line_error(capsys, argv):
    with pytest.raises(SystemExit) as e: segtest.main(argv)
    assert e.value.code != 0
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(err) == 1, err
    return err[0]


def test_output_paths_are_checked_first(setup, capsys, tmp_path):
    base, args, opts = setup
    f = tmp_path / 'a_file'; f.write_text('keep me')
    assert '--show-dir' in one_line_error(capsys, [*args, '--show-dir', str(f), *opts])
    assert 'lies under the file' in one_line_error(capsys, [*args, '--out', str(f / 'sub' / 'r.pkl'), *opts])
    (tmp_path / 'd.pkl').mkdir()
    assert 'is a folder' in one_line_error(capsys, [*args, '--out', str(tmp_path / 'd.pkl'), *opts])
    assert '--tmpdir' in one_line_error(capsys, [*args, '--eval', 'mIoU', '--tmpdir', str(f), *opts])
    assert 'launcher' in one_line_error(capsys, [*args, '--eval', 'mIoU', '--gpu-collect', *opts])
    assert f.read_text() == 'keep me' and sorted(p.name for p in tmp_path.iterdir()) == ['a_file', 'd.pkl']


def test_show(setup, capsys, monkeypatch):
    base, args, opts = setup
    monkeypatch.setattr(segtest, 'has_display', lambda: False)
    assert '--show needs a display' in one_line_error(capsys, [*args, '--show', *opts])
    import matplotlib.pyplot as plt
    shown = []
    monkeypatch.setattr(segtest, 'has_display', lambda: True)
    monkeypatch.setattr(plt, 'show', lambda *a, **k: shown.append(plt.gca().get_title()))
    segtest.main([*args, '--show', *opts])
    assert shown == [f'val_{i:05d}.png' for i in range(NUM_VAL)]


def test_format_only_writes_label_pngs(setup, tmp_path):
    base, args, opts = setup
    segtest.main([*args, '--out', str(tmp_path / 'preds.pkl'), *opts])
    preds = torch.load(tmp_path / 'preds.pkl')
    prefix = tmp_path / 'formatted'
    segtest.main([*args, '--format-only', '--eval-options', f'imgfile_prefix={prefix}', *opts])
    files = sorted(prefix.iterdir())
    assert [p.name for p in files] == [f'val_{i:05d}.png' for i in range(NUM_VAL)]
    for p, pred in zip(files, preds): assert np.array_equal(np.array(Image.open(p)), pred.numpy().astype(np.uint8))


@pytest.mark.parametrize('mode', ['gpu_collect', 'tmpdir'])
def test_two_processes_collect_every_prediction_once(setup, mode, tmp_path):
    base, args, opts = setup
    one = tmp_path / 'one.pkl'
    assert segtest.main([*args, '--out', str(one), *opts]) is None
    two, tmp = tmp_path / 'two.pkl', tmp_path / 'collect'
    flags = ['--gpu-collect'] if mode == 'gpu_collect' else ['--tmpdir', str(tmp)]
    res = run([*torchrun(), '--standalone', '--nproc_per_node', '2', '-m', 'segnb.test', *args, '--out', str(two),
               '--launcher', 'pytorch', *flags, *opts], cwd=tmp_path)
    assert res['rc'] == 0 and 'Traceback' not in res['out'], res['out'][-3000:]
    a, b = torch.load(one), torch.load(two)
    assert len(a) == len(b) == NUM_VAL and all(torch.equal(x, y) for x, y in zip(a, b))
    if mode == 'tmpdir': assert list(tmp.iterdir()) == []      # rank 0 removed what the processes wrote
    assert not (tmp_path / '.dist_test').exists()
