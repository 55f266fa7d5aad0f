"""Dataset files that cannot be read give one line naming the file: from the dataset, through DataLoader workers, and
through `python -m segnb.train` (one `segnb: error:` line on stderr, a non-zero exit, no traceback)."""
import os, os.path as osp, shutil, subprocess, sys
import numpy as np, pytest
from PIL import Image
from faults import tiny_config, subprocess_env
from segnb.errors import SegnbError
from segnb.data import CustomDataset, build_dataloader, make_shapes, save_label_png

pytestmark = pytest.mark.filterwarnings('ignore:The image decoding and encoding capabilities of TorchVision')
LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]


def break_file(path, how):
    "Damage one dataset file in place: cut it in half, empty it, replace it with text, or with a folder."
    data = open(path, 'rb').read()
    if how == 'folder': os.remove(path); os.makedirs(path); return
    with open(path, 'wb') as f: f.write({'truncated': data[:len(data) // 2], 'empty': b'', 'text': b'hello, not an image\n'}[how])


def small_dataset(root, n=4):
    for d in ('img', 'ann'): os.makedirs(osp.join(root, d))
    for i in range(n):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(osp.join(root, 'img', f'{i}.png'))
        save_label_png(np.full((16, 16), i % 2, np.uint8), osp.join(root, 'ann', f'{i}.png'), [[0, 0, 0], [255, 0, 0]])
    return root


def error_of(fn):
    with pytest.raises(SegnbError) as e: fn()
    msg = str(e.value)
    assert '\n' not in msg and '.cpp' not in msg and 'Traceback' not in msg, msg
    return msg


EXPECT = dict(truncated='cannot decode', empty='is empty', text='cannot decode', folder='not found')


@pytest.mark.parametrize('how', list(EXPECT))
@pytest.mark.parametrize('folder', ['img', 'ann'])
def test_unreadable_file_names_it(tmp_path, folder, how):
    root = small_dataset(str(tmp_path / 'd'))
    path = osp.join(root, folder, '2.png')
    break_file(path, how)
    if how == 'folder':   # not a file: a folder in img_dir is no image; a label that is a folder is missing
        if folder == 'img': assert len(CustomDataset(LOAD, img_dir='img', ann_dir='ann', img_suffix='.png', data_root=root)) == 3
        else: assert path in error_of(lambda: CustomDataset(LOAD, img_dir='img', ann_dir='ann', img_suffix='.png', data_root=root))
        return
    ds = CustomDataset(LOAD, img_dir='img', ann_dir='ann', img_suffix='.png', data_root=root)
    msg = error_of(lambda: ds[2])
    assert path in msg and EXPECT[how] in msg and ('label' if folder == 'ann' else 'image') in msg, msg
    for workers in ((0, 2) if how == 'truncated' else (0,)):   # workers raise the same single line as the main process
        loader = build_dataloader(ds, samples_per_gpu=2, workers_per_gpu=workers, shuffle=False, persistent_workers=False)
        assert error_of(lambda: list(loader)) == msg


def test_missing_and_empty_folders_and_splits(tmp_path):
    root = small_dataset(str(tmp_path / 'd'))
    def ds(**kw): return CustomDataset(LOAD, **dict(dict(img_dir='img', ann_dir='ann', img_suffix='.png', data_root=root), **kw))
    assert osp.join(root, 'nowhere') in error_of(lambda: ds(img_dir='nowhere'))
    assert osp.join(root, 'no_ann') in error_of(lambda: ds(ann_dir='no_ann'))
    assert 'is not a folder' in error_of(lambda: ds(img_dir='img/0.png'))
    assert osp.join(root, 'split.txt') in error_of(lambda: ds(split='split.txt'))
    os.makedirs(osp.join(root, 'empty'))
    assert 'no images in ' + osp.join(root, 'empty') in error_of(lambda: ds(img_dir='empty'))
    with open(osp.join(root, 'bin.txt'), 'wb') as f: f.write(b'\xff\xfe\x00\x81')
    assert 'cannot read split file ' + osp.join(root, 'bin.txt') in error_of(lambda: ds(split='bin.txt'))
    with open(osp.join(root, 'classes.txt'), 'wb') as f: f.write(b'\xff\xfe\x00\x81')
    assert osp.join(root, 'classes.txt') in error_of(lambda: ds(classes=osp.join(root, 'classes.txt')))


def test_unreadable_shapes_json(tmp_path):
    root = str(tmp_path / 'shapes')
    make_shapes(root, num_train=2, num_val=1, size=16, progress=False)
    with open(osp.join(root, 'shapes.json'), 'w') as f: f.write('{"num_train": 2,')
    assert osp.join(root, 'shapes.json') in error_of(lambda: make_shapes(root, num_train=2, num_val=1, size=16, progress=False))


def old_index(img_dir, img_suffix, ann_dir, seg_map_suffix):
    "The indexing segnb did before (a relpath per file, an isfile per label): the reference for order and content."
    names = sorted(osp.relpath(osp.join(d, f), img_dir) for d, _, fs in os.walk(img_dir, followlinks=True)
                   for f in fs if f.endswith(img_suffix))
    out = []
    for n in names:
        seg_map = n[:-len(img_suffix)] + seg_map_suffix
        assert osp.isfile(osp.join(ann_dir, seg_map))
        out.append(dict(filename=n, ann=dict(seg_map=seg_map)))
    return out


def test_index_same_as_before_on_nested_linked_folders(tmp_path):
    root = tmp_path / 'd'
    names = ['b/x_1_leftImg8bit.png', 'a/z_leftImg8bit.png', 'a/y/w_leftImg8bit.png', '.hidden_leftImg8bit.png', 'top_leftImg8bit.png']
    for n in names:
        for d, suffix in (('img', '_leftImg8bit.png'), ('ann', '_gtFine_labelTrainIds.png')):
            p = root / d / n.replace('_leftImg8bit.png', suffix)
            p.parent.mkdir(parents=True, exist_ok=True); p.touch()
    (root / 'img' / 'a' / 'notes.txt').touch()
    os.symlink(root / 'img' / 'b', root / 'img' / 'c')     # a linked folder is followed, as before
    os.symlink(root / 'ann' / 'b', root / 'ann' / 'c')
    ds = CustomDataset([], img_dir='img', ann_dir='ann', img_suffix='_leftImg8bit.png',
                       seg_map_suffix='_gtFine_labelTrainIds.png', data_root=str(root))
    assert ds.img_infos == old_index(str(root / 'img'), '_leftImg8bit.png', str(root / 'ann'), '_gtFine_labelTrainIds.png')
    assert len(ds) == 6


# ---------- through the command line: python -m segnb.train on a broken copy of a small Shapes dataset ----------
CLI = {  # case: (folder, file breakage, workers)
    'image-truncated-2-workers': ('img_dir', 'truncated', 2),
    'label-empty-2-workers': ('ann_dir', 'empty', 2),
    'image-text-no-workers': ('img_dir', 'text', 0),
}


@pytest.fixture(scope='module')
def cli_runs(tmp_path_factory):
    "Run every CLI case at once as `python -m segnb.train`; their (stderr, exit code, broken path)."
    tmp = tmp_path_factory.mktemp('cli')
    good = str(tmp / 'data')
    make_shapes(good, num_train=16, num_val=4, size=32, seed=0, progress=False)
    cfg = tiny_config(tmp / 'tiny.py', good)
    runs = {}
    for case, (folder, how, workers) in CLI.items():
        root = str(tmp / case)
        shutil.copytree(good, root)
        path = osp.join(root, folder, 'train', 'train_00005.png')
        break_file(path, how)
        cmd = [sys.executable, '-m', 'segnb.train', cfg, '--work-dir', str(tmp / f'work_{case}'), '--cfg-options',
               f'data.train.data_root={root}', f'data.workers_per_gpu={workers}']
        err = open(tmp / f'{case}.err', 'w+')
        runs[case] = (subprocess.Popen(cmd, env=subprocess_env(), cwd=str(tmp), stdout=subprocess.DEVNULL, stderr=err), err, path)
    out = {}
    for case, (p, err, path) in runs.items():
        code = p.wait(timeout=240); err.seek(0)
        out[case] = (err.read(), code, path); err.close()
    return out


@pytest.mark.parametrize('case', list(CLI))
def test_cli_one_line(case, cli_runs):
    err, code, path = cli_runs[case]
    assert code not in (0, None), err[-2000:]
    assert 'Traceback' not in err, err[-4000:]
    lines = [l for l in err.splitlines() if 'error:' in l]
    assert len(lines) == 1 and lines[0].startswith('segnb: error: ') and path in lines[0], err[-4000:]
    assert EXPECT[CLI[case][1]] in lines[0], lines[0]


def test_file_client_args_other_than_disk_are_refused(tmp_path):
    "segnb reads the local disk only: another FileClient backend is one line naming the key, not a silent disk read."
    from segnb.data.datasets.custom import CustomDataset
    from segnb.data.pipelines.loading import LoadAnnotations, LoadImageFromFile
    Image.new('RGB', (4, 4)).save(tmp_path / 'a.jpg')
    test_len = len(CustomDataset([], img_dir=str(tmp_path), file_client_args=dict(backend='disk')))
    assert test_len == 1
    with pytest.raises(SegnbError, match=r"CustomDataset.file_client_args=\{'backend': 'petrel'\}: only the local disk"):
        CustomDataset([], img_dir=str(tmp_path), file_client_args=dict(backend='petrel'))
    for cls in (LoadImageFromFile, LoadAnnotations):
        with pytest.raises(SegnbError, match=f'{cls.__name__}.file_client_args'):
            cls(file_client_args=dict(backend='http'))
