"""`python -m segnb.infer` and `python -m segnb.tools.confusion_matrix` as commands, on the default config with the
checkpoint of a freshly built model, a few small PNGs, and the predictions `python -m segnb.test --out` writes."""
import os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from segnb.config import Config
from segnb.data import build_dataset, make_shapes
from segnb.models import build_segmentor
from segnb.plot import inference_segmentor, init_segmentor, paint_result
from segnb.train import DEFAULT_CONFIG
from segnb.tools.confusion_matrix import calculate_confusion_matrix
import segnb.test as segtest

ROOT = Path(__file__).resolve().parent.parent
NUM_VAL = 3


def command(*args):
    "Run `python -m ARGS` from the repository root with this segnb; (exit code, stdout, non-empty stderr lines)."
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(p for p in (str(ROOT), os.environ.get('PYTHONPATH')) if p),
           'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'agg'}
    r = subprocess.run([sys.executable, '-m', *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, [l for l in r.stderr.splitlines() if l.strip()]


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    "Three PNGs (one alone, two in a folder), a checkpoint of an untrained model of the default config, a tiny Shapes set."
    base = tmp_path_factory.mktemp('infer')
    rng = np.random.default_rng(0)
    (base / 'photos').mkdir()
    for name in ('a.png', 'photos/b.png', 'photos/c.png'):
        Image.fromarray(rng.integers(0, 255, (36, 48, 3), dtype=np.uint8)).save(base / name)
    cfg = Config.fromfile(DEFAULT_CONFIG); cfg.model.pretrained = None
    torch.manual_seed(0)
    model = build_segmentor(cfg.model, test_cfg=cfg.get('test_cfg'))
    torch.save(dict(state_dict=model.state_dict(), meta={}), base / 'model.pth')
    make_shapes(str(base / 'shapes'), num_train=1, num_val=NUM_VAL, size=32, progress=False)
    data = [f'data.test.{k}' for k in (f'data_root={base / "shapes"}', 'num_train=1', f'num_val={NUM_VAL}', 'size=32')]
    return base, base / 'model.pth', data


def test_infer_paints_files_and_folders(setup):
    base, ckpt, _ = setup
    out = base / 'painted'
    rc, stdout, err = command('segnb.infer', DEFAULT_CONFIG, ckpt, base / 'a.png', base / 'photos', '--out', out,
                              '--opacity', '0.7', '--palette', 'voc', '--device', 'cpu')
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ['a.png', 'b.png', 'c.png']
    assert stdout.split() == [str(out / n) for n in ('a.png', 'b.png', 'c.png')]
    model = init_segmentor(DEFAULT_CONFIG, str(ckpt))
    from segnb.infer import get_palette
    for img in (base / 'a.png', base / 'photos' / 'c.png'):
        want = paint_result(model, img, inference_segmentor(model, img), get_palette('voc'), 0.7)
        assert np.array_equal(np.array(Image.open(out / img.name)), want)


def one_line_error(capsys, main, argv):
    "The single stderr line of a command that fails with exit status 1 (earlier output, such as log lines, dropped)."
    capsys.readouterr()
    with pytest.raises(SystemExit) as e: main([str(a) for a in argv])
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert e.value.code == 1 and len(err) == 1, err
    return err[0]


def test_infer_errors_are_one_line_and_inputs_are_kept(setup, capsys):
    base, ckpt, _ = setup
    from segnb.infer import main
    before = {p.name: p.read_bytes() for p in (base / 'photos').iterdir()}
    for args, words in (([base / 'nope.png', '--out', base / 'o'], 'image file or folder not found'),
                        ([base / 'photos', '--out', base / 'photos'], 'would overwrite an input image'),
                        ([base / 'a.png', '--out', base / 'a.png'], 'is an existing file'),
                        ([base / 'a.png', '--out', base / 'o', '--palette', 'coco'], "unknown palette 'coco'")):
        assert words in one_line_error(capsys, main, [DEFAULT_CONFIG, ckpt, *args])
    assert 'checkpoint file not found' in one_line_error(capsys, main, [DEFAULT_CONFIG, base / 'no.pth', base / 'a.png', '--out', base / 'o'])
    assert {p.name: p.read_bytes() for p in (base / 'photos').iterdir()} == before
    assert not (base / 'o').exists()


def test_confusion_matrix_of_test_predictions(setup, capsys):
    base, ckpt, data = setup
    preds = base / 'results.pkl'
    segtest.main([DEFAULT_CONFIG, str(ckpt), '--out', str(preds), '--cfg-options', 'data.workers_per_gpu=0', *data])
    rc, stdout, err = command('segnb.tools.confusion_matrix', DEFAULT_CONFIG, preds, base / 'cm', '--cfg-options', *data)
    assert rc == 0, err
    assert Image.open(base / 'cm' / 'confusion_matrix.png').format == 'PNG'
    cfg = Config.fromfile(DEFAULT_CONFIG); cfg.merge_from_dict(dict(d.split('=', 1) for d in data))
    ds = build_dataset({**cfg.data.test, 'num_train': 1, 'num_val': NUM_VAL, 'size': 32, 'test_mode': True})
    want = calculate_confusion_matrix(ds, torch.load(preds))
    assert want.sum() == NUM_VAL * 32 * 32
    counts = stdout.split('pixel counts')[1].split('percent of each')[0].splitlines()[2:2 + 4]
    assert [[int(v) for v in row.split()[1:]] for row in counts] == want.astype(int).tolist()

    from segnb.tools.confusion_matrix import main
    assert 'prediction file not found' in one_line_error(capsys, main, [DEFAULT_CONFIG, base / 'nope.pkl', base / 'cm'])
    torch.save(preds.name, base / 'name.pkl')
    assert 'does not hold label maps' in one_line_error(capsys, main, [DEFAULT_CONFIG, base / 'name.pkl', base / 'cm'])
