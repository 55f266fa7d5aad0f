"""The four retinal-vessel converters (`python -m segnb.tools.convert_dataset drive|hrf|stare|chase_db1`), each run on
a tiny release in its real archive layout, built here: the output names, the pixels (an image as it was, a tracing's
blue channel `// 128`, both computed here from the arrays written into the archive), the training/validation split
of mmseg 0.30's scripts, and segnb's dataset classes finding every sample with the folders of mmseg's dataset configs.
"""
import gzip, io, os, tarfile, zipfile
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from segnb.config import Config
from segnb.data import build_dataset
from segnb.tools.convert_dataset import main

CONFIGS = Path(__file__).parent / 'fixtures' / 'mmseg_configs' / '_base_' / 'datasets'
LEVELS = np.array([0, 1, 100, 127, 128, 129, 200, 255], np.uint8)
STARE_IDS = ['im0001', 'im0002', 'im0003', 'im0004', 'im0005', 'im0044', 'im0077', 'im0081', 'im0082', 'im0139',
             'im0162', 'im0163', 'im0235', 'im0236', 'im0239', 'im0240', 'im0255', 'im0291', 'im0319', 'im0324']
LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
CHASE_IDS = [f'Image_{i:02d}{eye}' for i in range(1, 15) for eye in 'LR']


def encode(arr, fmt, **kw):
    b = io.BytesIO(); Image.fromarray(arr).save(b, format=fmt, **kw); return b.getvalue()

def decoded(data):
    "What a file's bytes decode to, as RGB (the reference for lossy JPEG)."
    return np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))

def png(path): return np.asarray(Image.open(path))

def listing(out, d): return sorted(os.listdir(out / d))

def check_dataset(out, name):
    "segnb's dataset class, with the img_dir/ann_dir of mmseg's config `name`, finds every image and its label."
    data = Config.fromfile(str(CONFIGS / f'{name}.py')).data
    for split, cfg in (('training', data.train.dataset), ('validation', data.val)):
        ds = build_dataset(dict(cfg.to_dict(), data_root=str(out), pipeline=LOAD))
        test_images = listing(out, f'images/{split}')
        assert sorted(i['filename'] for i in ds.img_infos) == test_images and len(ds) == len(test_images) > 0
        for info in ds.img_infos: assert (out / f'annotations/{split}' / info['ann']['seg_map']).is_file()
        assert np.isin(np.unique(ds[0]['gt_semantic_seg']), [0, 1]).all()


@pytest.fixture
def rng(): return np.random.default_rng(0)


def make_drive(root, rng, test_labels=True):
    "DRIVE's training.zip and test.zip: <part>/images/*.tif, <part>/mask/*_mask.gif, <part>/1st_manual/*_manual1.gif."
    arrays = {}
    for zname, part, ids in (('training.zip', 'training', (21, 22, 23)), ('test.zip', 'test', (1, 2))):
        with zipfile.ZipFile(root / zname, 'w') as z:
            for i in ids:
                img, lab1, lab2 = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), rng.choice(LEVELS, (6, 8)), rng.choice(LEVELS, (6, 8))
                z.writestr(f'{part}/images/{i:02d}_{part}.tif', encode(img, 'TIFF'))
                z.writestr(f'{part}/mask/{i:02d}_{part}_mask.gif', encode(np.full((6, 8), 255, np.uint8), 'GIF'))
                arrays[f'{i:02d}'] = img
                if part == 'training' or test_labels:
                    z.writestr(f'{part}/1st_manual/{i:02d}_manual1.gif', encode(lab1, 'GIF'))
                    arrays[f'{i:02d}_manual1'] = lab1
                if part == 'test' and test_labels:
                    z.writestr(f'{part}/2nd_manual/{i:02d}_manual2.gif', encode(lab2, 'GIF'))
                    arrays[f'{i:02d}_manual2'] = lab2
    return root / 'training.zip', root / 'test.zip', arrays


def test_drive(tmp_path, rng):
    train_zip, test_zip, arrays = make_drive(tmp_path, rng)
    out = tmp_path / 'DRIVE'
    counts = main(['drive', str(train_zip), str(test_zip), '-o', str(out), '--tmp_dir', str(tmp_path)])
    assert listing(out, 'images/training') == ['21.png', '22.png', '23.png']
    assert listing(out, 'images/validation') == ['01.png', '02.png']
    assert listing(out, 'annotations/training') == ['21_manual1.png', '22_manual1.png', '23_manual1.png']
    assert listing(out, 'annotations/validation') == ['01_manual1.png', '01_manual2.png', '02_manual1.png', '02_manual2.png']
    assert counts == {'images/training': 3, 'images/validation': 2, 'annotations/training': 3, 'annotations/validation': 4}
    for split in ('training', 'validation'):
        for f in (out / 'images' / split).iterdir(): np.testing.assert_array_equal(png(f), arrays[f.stem])
        for f in (out / 'annotations' / split).iterdir():
            assert Image.open(f).mode == 'L'
            np.testing.assert_array_equal(png(f), (arrays[f.stem] >= 128).astype(np.uint8))
    check_dataset(out, 'drive')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['DRIVE', 'test.zip', 'training.zip']  # the temporary folder is gone


def test_drive_without_test_labels(tmp_path, rng):
    "The test.zip of DRIVE's later release has no tracings: mmseg skips the folders, and so does segnb."
    train_zip, test_zip, _ = make_drive(tmp_path, rng, test_labels=False)
    counts = main(['drive', str(train_zip), str(test_zip), '-o', str(tmp_path / 'out')])
    assert counts['images/validation'] == 2 and counts['annotations/validation'] == 0


HRF_SETS = {'healthy': 'h', 'glaucoma': 'g', 'diabetic_retinopathy': 'dr'}

def test_hrf(tmp_path, rng):
    """Six flat zips of 15 files each; the sorted first 5 of each go to training. Tracings here are RGB TIFFs whose
    channels differ, so that the test sees the blue one (OpenCV's channel 0) taken."""
    arrays, paths = {}, []
    for s, tag in HRF_SETS.items():
        for m in ('', '_manualsegm'):
            path = tmp_path / f'{s}{m}.zip'
            with zipfile.ZipFile(path, 'w') as z:
                for i in range(15, 0, -1):                       # written in reverse: the split must sort
                    if m: arr = rng.choice(LEVELS, (5, 7, 3)); z.writestr(f'{i:02d}_{tag}.tif', encode(arr, 'TIFF'))
                    else: data = encode(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8), 'JPEG'); z.writestr(f'{i:02d}_{tag}.jpg', data); arr = decoded(data)
                    arrays['annotations' if m else 'images', f'{i:02d}_{tag}'] = arr
            paths.append(str(path))
    out = tmp_path / 'HRF'
    main(['hrf', *paths, '-o', str(out)])
    for d in ('images', 'annotations'):
        assert listing(out, f'{d}/training') == sorted(f'{i:02d}_{t}.png' for t in HRF_SETS.values() for i in range(1, 6))
        assert listing(out, f'{d}/validation') == sorted(f'{i:02d}_{t}.png' for t in HRF_SETS.values() for i in range(6, 16))
    for split in ('training', 'validation'):
        for f in (out / 'images' / split).iterdir(): np.testing.assert_array_equal(png(f), arrays['images', f.stem])
        for f in (out / 'annotations' / split).iterdir():
            np.testing.assert_array_equal(png(f), arrays['annotations', f.stem][..., 2] // 128)
    check_dataset(out, 'hrf')


def make_tar(path, files):
    with tarfile.open(path, 'w') as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))


def test_stare(tmp_path, rng):
    "Three tars of 20 gzipped PPMs, STARE's own names; the sorted first 10 go to training."
    arrays = {}
    for tname, infix in (('stare-images.tar', ''), ('labels-ah.tar', '.ah'), ('labels-vk.tar', '.vk')):
        files = {}
        for i in STARE_IDS:
            arr = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8) if not infix else np.repeat(rng.choice(LEVELS, (5, 6, 1)), 3, -1)
            files[f'{i}{infix}.ppm.gz'] = gzip.compress(encode(arr, 'PPM'))
            arrays[i + infix] = arr
        make_tar(tmp_path / tname, files)
    out = tmp_path / 'STARE'
    main(['stare', *(str(tmp_path / t) for t in ('stare-images.tar', 'labels-ah.tar', 'labels-vk.tar')), '-o', str(out)])
    train, val = STARE_IDS[:10], STARE_IDS[10:]
    assert listing(out, 'images/training') == [f'{i}.png' for i in train]
    assert listing(out, 'images/validation') == [f'{i}.png' for i in val]
    assert listing(out, 'annotations/training') == sorted(f'{i}{x}.png' for i in train for x in ('.ah', '.vk'))
    assert listing(out, 'annotations/validation') == sorted(f'{i}{x}.png' for i in val for x in ('.ah', '.vk'))
    for split in ('training', 'validation'):
        for f in (out / 'images' / split).iterdir(): np.testing.assert_array_equal(png(f), arrays[f.stem])
        for f in (out / 'annotations' / split).iterdir(): np.testing.assert_array_equal(png(f), arrays[f.stem][..., 0] // 128)
    check_dataset(out, 'stare')


def test_chase_db1(tmp_path, rng, monkeypatch):
    """One flat zip of 84 files; the sorted first 60 (eyes 01L to 10R) train. Run without -o: data/CHASE_DB1 as mmseg.
    One photograph carries an EXIF orientation (rotate 90 degrees clockwise), which OpenCV applies."""
    arrays = {}
    with zipfile.ZipFile(tmp_path / 'CHASEDB1.zip', 'w') as z:
        for n, i in enumerate(CHASE_IDS):
            exif = Image.Exif()
            if i == 'Image_12R': exif[0x0112] = 6
            data = encode(rng.integers(0, 256, (6, 9, 3), dtype=np.uint8), 'JPEG', exif=exif)
            z.writestr(f'{i}.jpg', data)
            arrays[i] = np.rot90(decoded(data), -1) if i == 'Image_12R' else decoded(data)
            lab1, lab2 = rng.choice(LEVELS, (6, 9)), rng.random((6, 9)) > 0.5
            z.writestr(f'{i}_1stHO.png', encode(lab1, 'PNG')); arrays[i + '_1stHO'] = lab1
            z.writestr(f'{i}_2ndHO.png', encode(lab2, 'PNG')); arrays[i + '_2ndHO'] = lab2.astype(np.uint8) * 255  # a 1-bit PNG
    monkeypatch.chdir(tmp_path)
    main(['chase_db1', 'CHASEDB1.zip'])
    out = tmp_path / 'data' / 'CHASE_DB1'
    train, val = CHASE_IDS[:20], CHASE_IDS[20:]
    assert train[-1] == 'Image_10R' and len(val) == 8
    assert listing(out, 'images/training') == [f'{i}.png' for i in train]
    assert listing(out, 'images/validation') == [f'{i}.png' for i in val]
    assert listing(out, 'annotations/training') == sorted(f'{i}_{k}HO.png' for i in train for k in ('1st', '2nd'))
    assert listing(out, 'annotations/validation') == sorted(f'{i}_{k}HO.png' for i in val for k in ('1st', '2nd'))
    assert png(out / 'images/validation/Image_12R.png').shape == (9, 6, 3)
    for split in ('training', 'validation'):
        for f in (out / 'images' / split).iterdir(): np.testing.assert_array_equal(png(f), arrays[f.stem])
        for f in (out / 'annotations' / split).iterdir(): np.testing.assert_array_equal(png(f), arrays[f.stem] // 128)
    check_dataset(out, 'chase_db1')


def test_missing_archive(tmp_path, rng, capsys):
    "A missing archive is one line naming its argument and path, before any folder is made."
    train_zip, _, _ = make_drive(tmp_path, rng)
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as e: main(['drive', str(train_zip), str(tmp_path / 'tset.zip'), '-o', str(out)])
    assert e.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f'segnb: error: testing_path {tmp_path / "tset.zip"}: no such file or directory'], err
    assert not out.exists()


def test_wrong_archive(tmp_path, rng, capsys):
    "A zip of another count (HRF's are 15 files each) or without the member folder: one line naming the archive."
    train_zip, test_zip, _ = make_drive(tmp_path, rng)
    with pytest.raises(SystemExit): main(['drive', str(test_zip), str(test_zip), '-o', str(tmp_path / 'o')])
    assert capsys.readouterr().err.strip() == f'segnb: error: {test_zip}: has no member folder training/images/ (is it the right archive?)'
    with pytest.raises(SystemExit): main(['chase_db1', str(train_zip), '-o', str(tmp_path / 'o')])
    assert f'{train_zip}: holds 0 files at its top level; the release has 84' in capsys.readouterr().err
