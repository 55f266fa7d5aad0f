"""The aerial converters (LoveDA, Potsdam, Vaihingen, iSAID) on tiny releases in their zips' layout, run through
`python -m segnb.tools.convert_dataset`; patch names and label values are computed here from mmseg 0.30's rules."""
import io, math, os, os.path as osp, zipfile
import numpy as np
import pytest
from PIL import Image
from segnb.data import build_dataset
from segnb.tools.convert_dataset import main

# RGB colours of the classes, written out here rather than imported from the converters
ISPRS = [(0, 0, 0), (255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0)]
ISAID = [(0, 0, 0), (0, 0, 63), (0, 63, 63), (0, 63, 0), (0, 63, 127), (0, 63, 191), (0, 63, 255), (0, 127, 63),
         (0, 127, 127), (0, 0, 127), (0, 0, 191), (0, 0, 255), (0, 191, 127), (0, 127, 191), (0, 127, 255), (0, 100, 155)]


def encoded(arr, fmt):
    buf = io.BytesIO(); Image.fromarray(arr).save(buf, format=fmt); return buf.getvalue()


def mmseg_isprs_boxes(h, w, cs, ss):
    "The boxes of mmseg's potsdam.py/vaihingen.py clip_big_image, transcribed with numpy as there."
    rows, cols = math.ceil((h - cs) / ss), math.ceil((w - cs) / ss)
    x, y = np.meshgrid(np.arange(cols + 1), np.arange(rows + 1))
    xmin, ymin = (x * cs).ravel(), (y * cs).ravel()
    xmin = xmin + np.where(xmin + cs > w, w - xmin - cs, 0)
    ymin = ymin + np.where(ymin + cs > h, h - ymin - cs, 0)
    return {(int(a), int(b), int(min(a + cs, w)), int(min(b + cs, h))) for a, b in zip(xmin, ymin)}


def mmseg_isaid_boxes(h, w, ph, pw, ov):
    "The (y0, y1, x0, x1) of mmseg's isaid.py slide_crop loops."
    out = set()
    for x in range(0, w, pw - ov):
        for y in range(0, h, ph - ov):
            x0, y0 = x - max(x + pw - w, 0), y - max(y + ph - h, 0)
            out.add((y0, min(y + ph, h), x0, min(x + pw, w)))
    return out


def run(argv):
    return main(argv)


# ---------------------------------------------------------------- LoveDA
def make_loveda(root):
    rng, masks, names = np.random.default_rng(1), {}, {}
    for k, split in enumerate(('Train', 'Val', 'Test')):
        with zipfile.ZipFile(osp.join(root, f'{split}.zip'), 'w') as z:
            for j, domain in enumerate(('Rural', 'Urban')):
                for i in range(3):
                    n = 1000 * k + 100 * j + i
                    names.setdefault(split.lower(), []).append(f'{n}.png')
                    z.writestr(f'{split}/{domain}/images_png/{n}.png', encoded(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), 'PNG'))
                    if split != 'Test':
                        masks[n] = rng.integers(0, 8, (6, 6)).astype(np.uint8)
                        z.writestr(f'{split}/{domain}/masks_png/{n}.png', encoded(masks[n], 'PNG'))
    return masks, names


def test_loveda(tmp_path):
    rel = tmp_path / 'loveDA'; rel.mkdir()
    masks, names = make_loveda(rel)
    before = sorted(os.listdir(rel))
    out = tmp_path / 'out'
    counts = run(['loveda', str(rel), '-o', str(out), '--tmp_dir', str(tmp_path)])
    assert counts == {'img_dir/train': 6, 'ann_dir/train': 6, 'img_dir/val': 6, 'ann_dir/val': 6, 'img_dir/test': 6}
    for split in ('train', 'val', 'test'):
        assert sorted(os.listdir(out / 'img_dir' / split)) == sorted(names[split])
    assert not (out / 'ann_dir' / 'test').exists() or not os.listdir(out / 'ann_dir' / 'test')
    for n, m in masks.items():
        split = 'train' if n < 1000 else 'val'
        np.testing.assert_array_equal(np.asarray(Image.open(out / 'ann_dir' / split / f'{n}.png')), m)
    assert sorted(os.listdir(rel)) == before and sorted(os.listdir(tmp_path)) == ['loveDA', 'out']
    for split in ('train', 'val'):  # mmseg's configs/_base_/datasets/loveda.py
        ds = build_dataset(dict(type='LoveDADataset', data_root=str(out), img_dir=f'img_dir/{split}', ann_dir=f'ann_dir/{split}', pipeline=[]))
        assert len(ds) == 6


# ---------------------------------------------------------------- Potsdam
POTSDAM_TILES = {'2_10': (40, 40), '7_9': (40, 37), '2_13': (40, 40), '3_15': (33, 40)}  # train, train, val, val


def make_potsdam(root):
    rng, tiles = np.random.default_rng(2), {}
    with zipfile.ZipFile(root / '2_Ortho_RGB.zip', 'w') as zi, zipfile.ZipFile(root / '5_Labels_all.zip', 'w') as zl:
        for t, (h, w) in POTSDAM_TILES.items():
            img, cls = rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.integers(0, 7, (h, w))
            tiles[t] = img, cls
            zi.writestr(f'2_Ortho_RGB/top_potsdam_{t}_RGB.tif', encoded(img, 'TIFF'))
            zi.writestr(f'2_Ortho_RGB/top_potsdam_{t}_RGB.tfw', b'0.05\n0\n0\n-0.05\n0\n0\n')
            zl.writestr(f'top_potsdam_{t}_label.tif', encoded(np.array(ISPRS, np.uint8)[cls], 'TIFF'))
    return tiles


def test_potsdam(tmp_path):
    rel = tmp_path / 'potsdam'; rel.mkdir()
    tiles = make_potsdam(rel)
    out = tmp_path / 'out'
    counts = run(['potsdam', str(rel), '-o', str(out), '--clip_size', '16', '--stride_size', '8'])
    expected = {'train': set(), 'val': set()}
    for t, (h, w) in POTSDAM_TILES.items():
        split = 'train' if t in ('2_10', '7_9') else 'val'
        expected[split] |= {f'{t}_{x0}_{y0}_{x1}_{y1}.png' for x0, y0, x1, y1 in mmseg_isprs_boxes(h, w, 16, 8)}
    assert len(expected['train']) == 9 + 9 and len(expected['val']) == 9 + 9  # 3 windows a side (37 and 33: 3 too)
    for split in ('train', 'val'):
        for d in ('img_dir', 'ann_dir'):
            assert set(os.listdir(out / d / split)) == expected[split]
            assert counts[f'{d}/{split}'] == len(expected[split])
    img, cls = tiles['7_9']
    np.testing.assert_array_equal(np.asarray(Image.open(out / 'img_dir' / 'train' / '7_9_21_24_37_40.png')), img[24:40, 21:37])
    lab = Image.open(out / 'ann_dir' / 'val' / '3_15_24_17_40_33.png')
    assert lab.mode == 'L'
    np.testing.assert_array_equal(np.asarray(lab), tiles['3_15'][1][17:33, 24:40])
    for split in ('train', 'val'):  # mmseg's configs/_base_/datasets/potsdam.py
        ds = build_dataset(dict(type='PotsdamDataset', data_root=str(out), img_dir=f'img_dir/{split}', ann_dir=f'ann_dir/{split}', pipeline=[]))
        assert len(ds) == len(expected[split])


def test_potsdam_default_patches_and_odd_colours(tmp_path):
    "The defaults (512/256) place windows 512 apart; a colour outside the table maps by mmseg's weighted sum."
    from segnb.tools.converters.isprs import isprs_boxes, isprs_labels
    assert set(isprs_boxes(6000, 6000, 512, 256)) == mmseg_isprs_boxes(6000, 6000, 512, 256)
    assert len(isprs_boxes(6000, 6000, 512, 256)) == 144
    odd = np.array([[[0, 170, 0], [1, 2, 3], [0, 0, 255]]], np.uint8)
    bgr = odd[..., ::-1].astype(np.int64) @ np.array([2, 3, 4])  # mmseg: BGR pixels times (2, 3, 4)
    table = [np.dot(c[::-1], [2, 3, 4]) for c in ISPRS]
    want = [[table.index(v) if v in table else 0 for v in bgr[0]]]
    np.testing.assert_array_equal(isprs_labels(odd), want)
    assert want == [[2, 0, 2]]


# ---------------------------------------------------------------- Vaihingen
VAIHINGEN_TILES = {'area1': (40, 36), 'area2': (34, 40)}  # train, val


def make_vaihingen(root):
    rng, tiles = np.random.default_rng(3), {}
    with zipfile.ZipFile(root / 'ISPRS_semantic_labeling_Vaihingen.zip', 'w') as zi, \
         zipfile.ZipFile(root / 'ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip', 'w') as zl:
        for t, (h, w) in VAIHINGEN_TILES.items():
            img, cls = rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.integers(0, 7, (h, w))
            tiles[t] = img, cls
            zi.writestr(f'top/top_mosaic_09cm_{t}.tif', encoded(img, 'TIFF'))
            zi.writestr(f'gts_for_participants/top_mosaic_09cm_{t}.tif', encoded(np.array(ISPRS, np.uint8)[cls], 'TIFF'))
            zl.writestr(f'top_mosaic_09cm_{t}_noBoundary.tif', encoded(np.array(ISPRS, np.uint8)[cls], 'TIFF'))
        zl.writestr('top_mosaic_09cm_area9_noBoundary.tif', encoded(np.zeros((20, 20, 3), np.uint8), 'TIFF'))
    return tiles


def test_vaihingen(tmp_path):
    rel = tmp_path / 'vaihingen'; rel.mkdir()
    tiles = make_vaihingen(rel)
    out = tmp_path / 'out'
    counts = run(['vaihingen', str(rel), '-o', str(out), '--clip_size', '16', '--stride_size', '8'])
    for t, (h, w) in VAIHINGEN_TILES.items():
        split = 'train' if t == 'area1' else 'val'
        names = {f'{t}_{x0}_{y0}_{x1}_{y1}.png' for x0, y0, x1, y1 in mmseg_isprs_boxes(h, w, 16, 8)}
        for d in ('img_dir', 'ann_dir'):
            assert set(os.listdir(out / d / split)) == names  # area9's label is skipped, so val holds area2 only
            assert counts[f'{d}/{split}'] == len(names)
    np.testing.assert_array_equal(np.asarray(Image.open(out / 'ann_dir' / 'train' / 'area1_20_24_36_40.png')), tiles['area1'][1][24:40, 20:36])
    np.testing.assert_array_equal(np.asarray(Image.open(out / 'img_dir' / 'val' / 'area2_16_18_32_34.png')), tiles['area2'][0][18:34, 16:32])
    for split in ('train', 'val'):  # mmseg's configs/_base_/datasets/vaihingen.py
        ds = build_dataset(dict(type='ISPRSDataset', data_root=str(out), img_dir=f'img_dir/{split}', ann_dir=f'ann_dir/{split}', pipeline=[]))
        assert len(ds) == counts[f'img_dir/{split}']


# ---------------------------------------------------------------- iSAID
ISAID_IMAGES = {'train': {'P0001': (30, 40), 'P0004': (40, 26)}, 'val': {'P0002': (12, 20)}, 'test': {'P0003': (10, 10)}}


def make_isaid(root):
    rng, data = np.random.default_rng(4), {}
    for split, images in ISAID_IMAGES.items():
        (root / split / 'images').mkdir(parents=True); (root / split / 'Semantic_masks').mkdir()
        for k, (name, (h, w)) in enumerate(images.items()):
            data[name] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.integers(0, 16, (h, w)).astype(np.uint8)
            with zipfile.ZipFile(root / split / 'images' / f'part{k + 1}.zip', 'w') as z:
                z.writestr(f'images/{name}.png', encoded(data[name][0], 'PNG'))
            if split != 'test':
                with zipfile.ZipFile(root / split / 'Semantic_masks' / 'images.zip', 'a') as z:
                    z.writestr(f'images/{name}_instance_color_RGB.png', encoded(np.array(ISAID, np.uint8)[data[name][1]], 'PNG'))
    return data


def test_isaid(tmp_path):
    rel = tmp_path / 'iSAID'
    data = make_isaid(rel)
    out = tmp_path / 'out'
    counts = run(['isaid', str(rel), '-o', str(out), '--patch_width', '16', '--patch_height', '16', '--overlap_area', '8'])
    for split in ('train', 'val'):
        want_img, want_ann = set(), set()
        for name, (h, w) in ISAID_IMAGES[split].items():
            boxes = mmseg_isaid_boxes(max(h, 16), max(w, 16), 16, 16, 8)
            want_img |= {f'{name}_{a}_{b}_{c}_{d}.png' for a, b, c, d in boxes}
            want_ann |= {f'{name}_{a}_{b}_{c}_{d}_instance_color_RGB.png' for a, b, c, d in boxes}
        assert set(os.listdir(out / 'img_dir' / split)) == want_img and counts[f'img_dir/{split}'] == len(want_img)
        assert set(os.listdir(out / 'ann_dir' / split)) == want_ann and counts[f'ann_dir/{split}'] == len(want_ann)
        ds = build_dataset(dict(type='iSAIDDataset', data_root=str(out), img_dir=f'img_dir/{split}', ann_dir=f'ann_dir/{split}', pipeline=[]))
        assert len(ds) == len(want_img)  # mmseg's configs/_base_/datasets/isaid.py
    assert len(os.listdir(out / 'img_dir' / 'train')) == 3 * 4 + 4 * 3  # P0001: 3 rows x 4 columns; P0004: 4 x 3
    assert os.listdir(out / 'img_dir' / 'test') == ['P0003.png']
    with Image.open(out / 'img_dir' / 'test' / 'P0003.png') as im: np.testing.assert_array_equal(np.asarray(im), data['P0003'][0])
    np.testing.assert_array_equal(np.asarray(Image.open(out / 'img_dir' / 'train' / 'P0004_24_40_10_26.png')), data['P0004'][0][24:40, 10:26])
    lab = Image.open(out / 'ann_dir' / 'train' / 'P0001_14_30_8_24_instance_color_RGB.png')
    assert lab.mode == 'P'
    np.testing.assert_array_equal(np.asarray(lab), data['P0001'][1][14:30, 8:24])
    pad = np.asarray(Image.open(out / 'ann_dir' / 'val' / 'P0002_0_16_4_20_instance_color_RGB.png'))
    np.testing.assert_array_equal(pad[:12], data['P0002'][1][:, 4:20]); assert (pad[12:] == 255).all()
    padded_img = np.asarray(Image.open(out / 'img_dir' / 'val' / 'P0002_0_16_0_16.png'))
    assert (padded_img[12:] == 0).all()


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize('name, missing', [('loveda', 'Test.zip'), ('potsdam', None), ('vaihingen', None), ('isaid', 'val')])
def test_missing_input(tmp_path, capsys, name, missing):
    rel = tmp_path / 'release'; rel.mkdir()
    if name == 'loveda': make_loveda(rel); os.remove(rel / 'Test.zip')
    if name == 'isaid': make_isaid(rel); os.rename(rel / 'val', tmp_path / 'moved')
    target = rel if missing else tmp_path / 'absent'
    with pytest.raises(SystemExit) as e: run([name, str(target), '-o', str(tmp_path / 'out')])
    assert e.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith('segnb: error:')
    assert str(target / missing if missing else target) in err and 'no such file or directory' in err


def test_bad_patch_flags(tmp_path, capsys):
    rel = tmp_path / 'potsdam'; rel.mkdir(); make_potsdam(rel)
    with pytest.raises(SystemExit): run(['potsdam', str(rel), '-o', str(tmp_path / 'o'), '--clip_size', '41'])
    err = capsys.readouterr().err
    assert 'top_potsdam_' in err and 'smaller than --clip_size 41' in err
    with pytest.raises(SystemExit): run(['potsdam', str(rel), '--stride_size', '0'])
    assert 'must be positive, not 512 and 0' in capsys.readouterr().err
