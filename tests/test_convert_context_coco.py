"""The Pascal Context and COCO-Stuff converters (`python -m segnb.tools.convert_dataset pascal_context | coco_stuff10k |
coco_stuff164k`) on tiny releases in each release's layout: PASCAL in Detail's `trainval_merged.json` next to
`VOCdevkit/VOC2010/JPEGImages`, cocostuff-10k-v1.1 (`images/*.jpg`, `annotations/*.mat` with `S`, `imageLists/`),
and COCO 2017 with stuffthingmaps (`images/{train,val}2017/*.jpg`, `annotations/{train,val}2017/*.png`).

The expected labels are computed here from the synthetic inputs, with mmseg's tables written out in another form than
the converters use, and mmseg 0.30's dataset configs (copied in tests/fixtures/mmseg_configs) must find every sample.
"""
import json
import os
import os.path as osp
import sys
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
import segnb.data.datasets.more  # noqa: F401  (registers the presets)
from segnb.config import Config
from segnb.data import build_dataset
from segnb.tools.convert_dataset import main as convert
from segnb.tools.converters.pascal_context import rle_counts, rle_decode
from segnb.errors import SegnbError

CONFIGS = Path(__file__).parent / 'fixtures' / 'mmseg_configs' / '_base_' / 'datasets'

# mmseg 0.30's `_mapping` of tools/convert_datasets/pascal_context.py, in its own (unsorted) order
CONTEXT_60 = [0, 2, 259, 260, 415, 324, 9, 258, 144, 18, 19, 22, 23, 397, 25, 284, 158, 159, 416, 33, 162, 420, 454,
              295, 296, 427, 44, 45, 46, 308, 59, 440, 445, 31, 232, 65, 354, 424, 68, 326, 72, 458, 34, 207, 80, 355,
              85, 347, 220, 349, 360, 98, 187, 104, 105, 366, 189, 368, 113, 115]
# COCO thing ids (1-based) missing from mmseg's clsID_to_trID tables (10k; one less in the 0-based 164k release)
UNUSED = [12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91]


def expected_10k(v):
    "mmseg's 10k table as arithmetic: an id used by COCO-Stuff moves down by the unused ids below it; others stay."
    return v if v in UNUSED or v > 182 else v - sum(u < v for u in UNUSED)


def expected_164k(v):
    "mmseg's 164k table: the same on 0-based ids; 255 stays 255."
    return v if v + 1 in UNUSED or 181 < v else v - sum(u - 1 < v for u in UNUSED)


def test_tables_agree_with_mmseg_entries():
    # entries read off mmseg 0.30's two clsID_to_trID dicts
    assert [expected_10k(c) for c in (0, 11, 13, 25, 27, 28, 31, 46, 65, 67, 70, 72, 82, 84, 90, 92, 182)] == \
        [0, 11, 12, 24, 25, 26, 27, 41, 60, 61, 62, 63, 73, 74, 80, 81, 171]
    assert [expected_164k(c) for c in (0, 10, 12, 24, 26, 27, 30, 45, 64, 66, 69, 71, 81, 83, 89, 91, 181, 255)] == \
        [0, 10, 11, 23, 24, 25, 26, 40, 59, 60, 61, 62, 72, 73, 79, 80, 170, 255]


def run(argv, capsys, with_err=False):
    "Run the command; returns what the converter returned and its stdout (and stderr)."
    result = convert(argv)
    out, err = capsys.readouterr()
    return (result, out, err) if with_err else (result, out)


def fails(argv, capsys):
    "Run the command expecting a one-line `segnb: error:`; returns that line."
    with pytest.raises(SystemExit) as e: convert(argv)
    assert e.value.code == 1
    err = capsys.readouterr().err.strip()
    lines = [l for l in err.splitlines() if not l.startswith('segnb: warning: ')]   # a short release is warned about
    assert len(lines) == 1 and lines[0].startswith('segnb: error: ') and 'Traceback' not in err, err
    return lines[0]


def configured(name, root, split):
    "The dataset of `data.<split>` of mmseg's dataset config `name`, built over `root`."
    cfg = Config.fromfile(str(CONFIGS / f'{name}.py'))
    cfg.data[split].data_root = str(root)
    return build_dataset(cfg.data[split], None if split == 'train' else dict(test_mode=True))


def found(ds):
    "(image, label) paths, relative to the data root, of every sample the dataset lists; each label file exists."
    pairs = {(osp.relpath(osp.join(ds.img_dir, i['filename']), ds.data_root),
              osp.relpath(osp.join(ds.ann_dir, i['ann']['seg_map']), ds.data_root)) for i in ds.img_infos}
    assert all(osp.isfile(osp.join(ds.data_root, label)) for _, label in pairs)
    return pairs


# ---------------------------------------------------------------- COCO RLE

def encode(mask):
    "A 0/1 mask to a compressed COCO RLE, following pycocotools' rleEncode and rleToString step by step."
    flat = [int(v) for v in np.asarray(mask, bool).flatten(order='F')]
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current: counts.append(run); current, run = v, 0
        run += 1
    counts.append(run)
    chars = []
    for i, x in enumerate(counts):
        if i > 2: x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1f
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more: c |= 0x20
            chars.append(chr(c + 48))
    return {'size': list(np.shape(mask)), 'counts': ''.join(chars), '_runs': counts}


def test_rle_strings_worked_by_hand():
    assert rle_counts('132') == [1, 3, 2]
    assert rle_counts('X1') == [40]
    assert rle_counts('5:2I') == [5, 10, 2, 3]          # the fourth run is stored as 3 - 10 = -7, 'I'
    assert rle_counts('00000`1') == [0, 0, 0, 0, 0, 48]
    assert (rle_decode({'size': [3, 2], 'counts': '132'}) == [[0, 1], [1, 0], [1, 0]]).all()


def test_rle_compressed_and_uncompressed_decode_to_the_mask():
    rng = np.random.default_rng(3)
    for t in range(60):
        h, w = rng.integers(1, 40, 2)
        mask = rng.random((h, w)) < rng.random()
        if t % 3 == 0: mask = np.zeros((h, w), bool); mask[rng.integers(0, h):, rng.integers(0, w):] = True
        rle = encode(mask)
        assert rle_counts(rle['counts']) == rle['_runs']
        assert (rle_decode(rle) == mask).all()
        assert (rle_decode({'size': rle['size'], 'counts': rle['_runs']}) == mask).all()
        assert (rle_decode({'size': rle['size'], 'counts': rle['counts'].encode()}) == mask).all()


def test_rle_errors_name_the_place():
    with pytest.raises(SegnbError, match='ann 3: the runs of the RLE cover 6 pixels, not 2x2'):
        rle_decode({'size': [2, 2], 'counts': '132'}, 'ann 3')
    with pytest.raises(SegnbError, match='ends inside a number'): rle_counts('X')
    with pytest.raises(SegnbError, match='not a character'): rle_counts('1 2')
    with pytest.raises(SegnbError, match='negative length'): rle_decode({'size': [1, 2], 'counts': [3, -1]})


# ---------------------------------------------------------------- Pascal Context

def detail_release(tmp_path, images, regions):
    "A VOCdevkit with JPEGImages and a Detail-format trainval_merged.json (every key the Detail API indexes)."
    voc = tmp_path / 'VOCdevkit' / 'VOC2010'
    (voc / 'JPEGImages').mkdir(parents=True)
    rng = np.random.default_rng(0)
    for img in images:
        Image.fromarray(rng.integers(0, 255, (img['height'], img['width'], 3), dtype=np.uint8)).save(voc / 'JPEGImages' / img['file_name'])
    data = {'info': {'year': 2017}, 'images': images, 'annos_segmentation': regions, 'annos_occlusion': [],
            'annos_boundary': [], 'annos_joints': [], 'parts': [],
            'categories': [{'category_id': c, 'name': f'cat{c}', 'supercategory': 'object', 'parts': [], 'onlysemantic': 1}
                           for c in sorted(CONTEXT_60)[1:]]}
    (voc / 'trainval_merged.json').write_text(json.dumps(data))
    return tmp_path / 'VOCdevkit', voc / 'trainval_merged.json'


def image(name, phase, h=9, w=7):
    return {'file_name': f'{name}.jpg', 'image_id': int(name.replace('_', '')), 'height': h, 'width': w,
            'phase': phase, 'date_captured': '03-Jan-2010'}


def region(rid, img, cat, mask, crowd=0):
    seg = {k: v for k, v in encode(mask).items() if k != '_runs'}
    return {'id': rid, 'image_id': img['image_id'], 'category_id': cat, 'segmentation': seg, 'area': int(mask.sum()),
            'bbox': [0, 0, img['width'], img['height']], 'iscrowd': crowd, 'parts': []}


@pytest.fixture
def context(tmp_path):
    "Two train images, one val, one test; regions that overlap (later over earlier), one crowd, one image unlabelled."
    rng = np.random.default_rng(1)
    imgs = [image('2008_000002', 'train'), image('2008_000003', 'train', 5, 6), image('2008_000007', 'val'),
            image('2008_000009', 'test'), image('2008_000015', 'train', 4, 4)]
    regions, masks = [], {}
    for img in imgs[:4]:
        for cat in rng.choice(sorted(CONTEXT_60)[1:], 4, replace=False):
            masks[len(regions) + 1] = m = rng.random((img['height'], img['width'])) < 0.35
            regions.append(region(len(regions) + 1, img, int(cat), m, crowd=int(len(regions) == 2)))
    rng.shuffle(regions)    # the file's order, not the images', decides what covers what
    truth = {}
    for img in imgs[:3] + imgs[4:]:
        ids = np.zeros((img['height'], img['width']), int)
        for r in regions:
            if r['image_id'] == img['image_id']: ids[masks[r['id']]] = r['category_id']
        truth[img['file_name'][:-4]] = np.vectorize(sorted(CONTEXT_60).index)(ids)
    devkit, json_path = detail_release(tmp_path, imgs, regions)
    return devkit, json_path, truth


def test_pascal_context_labels_lists_and_datasets(context, capsys):
    devkit, json_path, truth = context
    result, out = run(['pascal_context', str(devkit), str(json_path)], capsys)
    voc = devkit / 'VOC2010'
    assert (result['train'], result['val']) == (3, 1) and 'pascal_context: 4 label maps' in out
    assert sorted(os.listdir(voc / 'SegmentationClassContext')) == \
        ['2008_000002.png', '2008_000003.png', '2008_000007.png', '2008_000015.png']   # the test image is skipped
    for name in ('2008_000002', '2008_000003', '2008_000007', '2008_000015'):
        label = Image.open(voc / 'SegmentationClassContext' / f'{name}.png')
        assert label.mode == 'L' and (np.asarray(label) == truth[name]).all(), name
    splits = voc / 'ImageSets' / 'SegmentationContext'
    assert (splits / 'train.txt').read_text() == '2008_000002\n2008_000003\n2008_000015\n'
    assert (splits / 'val.txt').read_text() == '2008_000007\n'
    for config, reduce in (('pascal_context', False), ('pascal_context_59', True)):
        for split, names in (('train', ['2008_000002', '2008_000003', '2008_000015']), ('val', ['2008_000007']), ('test', ['2008_000007'])):
            ds = configured(config, voc, split)
            assert ds.reduce_zero_label == reduce
            assert found(ds) == {(f'JPEGImages/{n}.jpg', f'SegmentationClassContext/{n}.png') for n in names}


def test_pascal_context_out_dir_keeps_lists_in_the_devkit(context, tmp_path, capsys):
    devkit, json_path, truth = context
    before = sorted(p.relative_to(devkit) for p in devkit.rglob('*'))
    result, _ = run(['pascal_context', str(devkit), str(json_path), '-o', str(tmp_path / 'labels')], capsys)
    assert sorted(os.listdir(tmp_path / 'labels')) == ['2008_000002.png', '2008_000003.png', '2008_000007.png', '2008_000015.png']
    assert (np.asarray(Image.open(tmp_path / 'labels' / '2008_000007.png')) == truth['2008_000007']).all()
    added = sorted(set(p.relative_to(devkit) for p in devkit.rglob('*')) - set(before))
    assert [str(p) for p in added] == ['VOC2010/ImageSets', 'VOC2010/ImageSets/SegmentationContext',
                                       'VOC2010/ImageSets/SegmentationContext/train.txt', 'VOC2010/ImageSets/SegmentationContext/val.txt']


def test_pascal_context_bad_inputs_are_one_line(context, tmp_path, capsys):
    devkit, json_path, _ = context
    err = fails(['pascal_context', str(devkit), str(tmp_path / 'nope.json')], capsys)
    assert err == f"segnb: error: json_path {tmp_path / 'nope.json'}: no such file or directory"
    assert 'VOC2010: no such file or directory' in fails(['pascal_context', str(tmp_path / 'elsewhere'), str(json_path)], capsys)
    data = json.loads(json_path.read_text())
    data['annos_segmentation'][0]['category_id'] = 1     # not one of the 60
    json_path.write_text(json.dumps(data))
    err = fails(['pascal_context', str(devkit), str(json_path), '-o', str(tmp_path / 'o')], capsys)
    assert 'category id 1 is not one of the 60 Pascal Context classes' in err and 'trainval_merged.json' in err
    data['annos_segmentation'][0]['segmentation'] = [[0.0, 0.0, 3.0, 0.0, 3.0, 3.0]]   # a polygon
    json_path.write_text(json.dumps(data))
    err = fails(['pascal_context', str(devkit), str(json_path), '-o', str(tmp_path / 'o')], capsys)
    assert f"annotation {data['annos_segmentation'][0]['id']}: the segmentation is not an RLE" in err
    json_path.write_text('{"images": [')
    assert 'not a readable JSON file' in fails(['pascal_context', str(devkit), str(json_path)], capsys)
    json_path.write_text('{"images": []}')
    assert 'not a Detail annotation file' in fails(['pascal_context', str(devkit), str(json_path)], capsys)


# ---------------------------------------------------------------- COCO-Stuff 10k

def stuff10k_release(root, train, test, hw=(6, 8)):
    "cocostuff-10k-v1.1 unpacked: images/<name>.jpg, annotations/<name>.mat (S, names, captions), imageLists/*.txt."
    from scipy.io import savemat
    rng = np.random.default_rng(2)
    for sub in ('images', 'annotations', 'imageLists'): (root / sub).mkdir(parents=True)
    raw = {}
    for name in train + test:
        Image.fromarray(rng.integers(0, 255, (*hw, 3), dtype=np.uint8)).save(root / 'images' / f'{name}.jpg')
        raw[name] = rng.choice([0, 1, 11, 13, 25, 27, 92, 181, 182], hw).astype(np.uint16)
        savemat(root / 'annotations' / f'{name}.mat', {'S': raw[name], 'names': np.array(['unlabeled', 'person'], dtype=object),
                                                       'captions': np.array(['a caption'], dtype=object)})
    (root / 'imageLists' / 'train.txt').write_text(''.join(n + '\n' for n in train))
    (root / 'imageLists' / 'test.txt').write_text(''.join(n + '\n' for n in test))
    (root / 'imageLists' / 'all.txt').write_text(''.join(n + '\n' for n in train + test))
    return raw


TRAIN10K = ['COCO_train2014_000000000077', 'COCO_train2014_000000000078', 'COCO_train2014_000000000081']
TEST10K = ['COCO_train2014_000000000139', 'COCO_train2014_000000000241']


@pytest.mark.parametrize('nproc', [1, 2])
def test_coco_stuff10k(tmp_path, nproc, capsys):
    pytest.importorskip('scipy')
    root = tmp_path / 'coco_stuff10k'
    raw = stuff10k_release(root, TRAIN10K, TEST10K)
    before = {p: p.read_bytes() for p in root.rglob('*') if p.is_file()}
    result, out, err = run(['coco_stuff10k', str(root), '--nproc', str(nproc)], capsys, with_err=True)
    assert (result['train2014'], result['test2014']) == (3, 2) and 'coco_stuff10k: 3 train and 2 test' in out
    assert 'segnb: warning: coco_stuff10k: 5 images found, the full release has 10000' in err
    assert all(p.read_bytes() == b for p, b in before.items())            # the release is left as it was
    for split, names in (('train2014', TRAIN10K), ('test2014', TEST10K)):
        assert sorted(os.listdir(root / 'images' / split)) == [n + '.jpg' for n in names]
        assert sorted(os.listdir(root / 'annotations' / split)) == [n + '_labelTrainIds.png' for n in names]
        for n in names:
            assert (root / 'images' / split / f'{n}.jpg').read_bytes() == (root / 'images' / f'{n}.jpg').read_bytes()
            label = np.asarray(Image.open(root / 'annotations' / split / f'{n}_labelTrainIds.png'))
            assert label.dtype == np.uint8 and (label == np.vectorize(expected_10k)(raw[n])).all()
    for split, names in (('train', TRAIN10K), ('val', TEST10K), ('test', TEST10K)):
        ds = configured('coco-stuff10k', root, split)
        assert ds.reduce_zero_label
        folder = 'train2014' if split == 'train' else 'test2014'
        assert found(ds) == {(f'images/{folder}/{n}.jpg', f'annotations/{folder}/{n}_labelTrainIds.png') for n in names}


def test_coco_stuff10k_out_dir_and_errors(tmp_path, capsys, monkeypatch):
    pytest.importorskip('scipy')
    root = tmp_path / 'release'
    raw = stuff10k_release(root, TRAIN10K[:1], TEST10K[:1])
    run(['coco_stuff10k', str(root), '-o', str(tmp_path / 'out'), '--nproc', '1'], capsys)
    label = np.asarray(Image.open(tmp_path / 'out' / 'annotations' / 'test2014' / f'{TEST10K[0]}_labelTrainIds.png'))
    assert (label == np.vectorize(expected_10k)(raw[TEST10K[0]])).all()
    assert not (root / 'images' / 'train2014').exists()
    (root / 'annotations' / f'{TEST10K[0]}.mat').unlink()
    assert f'{TEST10K[0]}.mat: no such file or directory' in fails(['coco_stuff10k', str(root), '-o', str(tmp_path / 'o2'), '--nproc', '1'], capsys)
    (root / 'annotations' / f'{TEST10K[0]}.mat').write_bytes(b'not a mat file')
    assert 'not a readable .mat file' in fails(['coco_stuff10k', str(root), '-o', str(tmp_path / 'o2'), '--nproc', '1'], capsys)
    monkeypatch.setitem(sys.modules, 'scipy.io', None)      # as if scipy were not installed
    assert 'pip install scipy' in fails(['coco_stuff10k', str(root), '-o', str(tmp_path / 'o3'), '--nproc', '1'], capsys)
    (root / 'imageLists' / 'test.txt').unlink()
    assert 'imageLists/test.txt: no such file or directory' in fails(['coco_stuff10k', str(root)], capsys)


# ---------------------------------------------------------------- COCO-Stuff 164k

def stuff164k_release(root, splits, hw=(6, 8)):
    "COCO 2017 images and stuffthingmaps_trainval2017 unpacked under images/ and annotations/, as mmseg's docs say."
    rng = np.random.default_rng(4)
    raw = {}
    for split, stems in splits.items():
        for sub in ('images', 'annotations'): (root / sub / split).mkdir(parents=True)
        for stem in stems:
            Image.fromarray(rng.integers(0, 255, (*hw, 3), dtype=np.uint8)).save(root / 'images' / split / f'{stem}.jpg')
            raw[stem] = rng.choice([0, 10, 11, 12, 26, 90, 91, 180, 181, 255], hw).astype(np.uint8)
            Image.fromarray(raw[stem]).save(root / 'annotations' / split / f'{stem}.png')
    return raw


SPLITS164K = {'train2017': ['000000000009', '000000000025', '000000000030'], 'val2017': ['000000000139', '000000000285']}


@pytest.mark.parametrize('nproc', [1, 2])
def test_coco_stuff164k_in_place(tmp_path, nproc, capsys):
    root = tmp_path / 'coco_stuff164k'
    raw = stuff164k_release(root, SPLITS164K)
    result, out = run(['coco_stuff164k', str(root), '--nproc', str(nproc)], capsys)
    assert (result['train2017'], result['val2017']) == (3, 2) and 'coco_stuff164k: 3 train and 2 val' in out
    for split, stems in SPLITS164K.items():
        assert sorted(os.listdir(root / 'annotations' / split)) == sorted(
            [f'{s}.png' for s in stems] + [f'{s}_labelTrainIds.png' for s in stems])
        for s in stems:
            assert (np.asarray(Image.open(root / 'annotations' / split / f'{s}.png')) == raw[s]).all()   # untouched
            label = np.asarray(Image.open(root / 'annotations' / split / f'{s}_labelTrainIds.png'))
            assert (label == np.vectorize(expected_164k)(raw[s])).all()
    result, _ = run(['coco_stuff164k', str(root), '--nproc', '1'], capsys)     # a second run skips its own outputs
    assert (result['train2017'], result['val2017']) == (3, 2)
    for split, folder in (('train', 'train2017'), ('val', 'val2017'), ('test', 'val2017')):
        ds = configured('coco-stuff164k', root, split)
        assert not ds.reduce_zero_label
        assert found(ds) == {(f'images/{folder}/{s}.jpg', f'annotations/{folder}/{s}_labelTrainIds.png') for s in SPLITS164K[folder]}


def test_coco_stuff164k_out_dir_copies_images(tmp_path, capsys):
    root, out = tmp_path / 'release', tmp_path / 'out'
    raw = stuff164k_release(root, SPLITS164K)
    run(['coco_stuff164k', str(root), '-o', str(out), '--nproc', '1'], capsys)
    for split, stems in SPLITS164K.items():
        assert sorted(os.listdir(out / 'images' / split)) == [f'{s}.jpg' for s in stems]
        assert sorted(os.listdir(out / 'annotations' / split)) == [f'{s}_labelTrainIds.png' for s in stems]
        assert sorted(os.listdir(root / 'annotations' / split)) == [f'{s}.png' for s in stems]
    s = SPLITS164K['val2017'][1]
    assert (np.asarray(Image.open(out / 'annotations' / 'val2017' / f'{s}_labelTrainIds.png')) == np.vectorize(expected_164k)(raw[s])).all()
    assert len(configured('coco-stuff164k', out, 'train')) == 3


def test_coco_stuff164k_bad_inputs_are_one_line(tmp_path, capsys):
    assert 'annotations/train2017: no such file or directory' in fails(['coco_stuff164k', str(tmp_path)], capsys)
    root = tmp_path / 'release'
    stuff164k_release(root, SPLITS164K)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / 'annotations' / 'val2017' / '000000000139.png')
    assert '000000000139.png: not an 8-bit one-channel label map' in fails(['coco_stuff164k', str(root), '--nproc', '1'], capsys)
