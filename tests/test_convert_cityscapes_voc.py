"""`python -m segnb.tools.convert_dataset cityscapes|voc_aug` on tiny made-up releases in the real layouts.

Cityscapes: `gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_polygons.json` next to the release's other label files,
`leftImg8bit/<split>/<city>/*_leftImg8bit.png`. The polygons are rectangles (and one triangle whose long edge crosses
each row at a whole pixel), so the expected label map is drawn here with numpy slices, without PIL.
Pascal VOC + SBD: `VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,ImageSets/Segmentation}` and
`benchmark_RELEASE/dataset/{cls/*.mat,train.txt,val.txt}`, the .mat files written with scipy in SBD's struct.
"""
import hashlib, json, sys
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from segnb.config import Config
from segnb.data import VOC_PALETTE, build_dataset, save_label_png
from segnb.tools.convert_dataset import main

CONFIGS = Path(__file__).parent / 'fixtures' / 'mmseg_configs' / '_base_' / 'datasets'
TRAIN_IDS = {'road': 0, 'sidewalk': 1, 'building': 2, 'pole': 5, 'vegetation': 8, 'sky': 10, 'person': 11, 'car': 13}


def rect(x0, y0, x1, y1): return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]

# (split, city/stem, width, height, objects); drawn in this order, later ones on top
CITYSCAPES = [
    ('train', 'aachen/aachen_000000_000019', 24, 16, [
        {'label': 'road', 'polygon': rect(0, 9, 23, 15)}, {'label': 'building', 'polygon': rect(0, 0, 11, 8)},
        {'label': 'cargroup', 'polygon': rect(2, 6, 9, 12)}, {'label': 'person', 'polygon': rect(14, 4, 16, 13)},
        {'label': 'car', 'polygon': rect(15, 8, 22, 14)}, {'label': 'license plate', 'polygon': rect(17, 12, 19, 13)},
        {'label': 'car', 'polygon': rect(0, 0, 23, 15), 'deleted': 1},
        {'label': 'sky', 'polygon': [[11, 0], [23, 0], [23, 3]]}]),   # long edge x = 11 + 4y: rows 0..3
    ('train', 'bochum/bochum_000000_000313', 12, 10, [
        {'label': 'vegetation', 'polygon': rect(0, 0, 11, 9)}, {'label': 'polegroup', 'polygon': rect(3, 0, 4, 9)},
        {'label': 'pole', 'polygon': rect(8, 2, 8, 7)}, {'label': 'ego vehicle', 'polygon': rect(0, 8, 11, 9)}]),
    ('val', 'frankfurt/frankfurt_000000_000294', 10, 8, [
        {'label': 'sidewalk', 'polygon': rect(1, 1, 8, 6)}, {'label': 'persongroup', 'polygon': rect(4, 2, 6, 5)}]),
    ('test', 'berlin/berlin_000000_000019', 8, 6, [{'label': 'ego vehicle', 'polygon': rect(0, 4, 7, 5)}]),
]


def expected_train_ids(w, h, objects):
    "The label map json2labelImg draws, computed with numpy slices (edges included, as PIL fills them)."
    out = np.full((h, w), 255, np.uint8)
    for obj in objects:
        name = obj['label'][:-len('group')] if obj['label'] in ('cargroup', 'persongroup') else obj['label']
        if obj.get('deleted') or name == 'license plate': continue
        value = TRAIN_IDS.get(name, 255)
        if name == 'sky':
            for y in range(4): out[y, 11 + 4 * y:] = value
        else:
            (x0, y0), _, (x1, y1), _ = obj['polygon']
            out[y0:y1 + 1, x0:x1 + 1] = value
    return out


def make_cityscapes(root):
    "The made-up release: polygons, the release's other gtFine files, and the images."
    for split, stem, w, h, objects in CITYSCAPES:
        gt = root / 'gtFine' / split / f'{stem}_gtFine_polygons.json'
        gt.parent.mkdir(parents=True, exist_ok=True)
        gt.write_text(json.dumps({'imgHeight': h, 'imgWidth': w, 'objects': objects}))
        Image.new('L', (w, h), 0).save(root / 'gtFine' / split / f'{stem}_gtFine_labelIds.png')
        img = root / 'leftImg8bit' / split / f'{stem}_leftImg8bit.png'
        img.parent.mkdir(parents=True, exist_ok=True)
        Image.new('RGB', (w, h), (90, 90, 90)).save(img)
    return root


def digests(root):
    return {p: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(root.rglob('*')) if p.is_file()}


def one_line_error(capsys, argv):
    "Run the command, expect exit status 1, and return the single line it printed on stderr."
    with pytest.raises(SystemExit) as e: main(argv)
    assert e.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('segnb: error: '), err
    return err[0]


def test_cityscapes_train_ids_splits_and_dataset(tmp_path):
    root = make_cityscapes(tmp_path / 'cityscapes')
    before = digests(root)
    counts = main(['cityscapes', str(root), '--nproc', '2'])
    assert counts == dict(labels=4, train=2, val=1, test=1)
    for split, stem, w, h, objects in CITYSCAPES:
        png = root / 'gtFine' / split / f'{stem}_gtFine_labelTrainIds.png'
        img = Image.open(png)
        assert img.mode == 'L' and img.size == (w, h)
        np.testing.assert_array_equal(np.asarray(img), expected_train_ids(w, h, objects), err_msg=stem)
    after = digests(root)
    assert all(after[p] == d for p, d in before.items())   # no file of the release changed
    assert (root / 'train.txt').read_text() == 'aachen/aachen_000000_000019\nbochum/bochum_000000_000313\n'
    assert (root / 'val.txt').read_text() == 'frankfurt/frankfurt_000000_000294\n'
    assert (root / 'test.txt').read_text() == 'berlin/berlin_000000_000019\n'

    data = Config.fromfile(str(CONFIGS / 'cityscapes.py')).data
    for split, n in (('train', 2), ('val', 1)):
        ds = build_dataset(dict(data[split].to_dict(), data_root=str(root)))
        assert len(ds) == n
        for i, (_, stem, w, h, objects) in enumerate(s for s in CITYSCAPES if s[0] == split):
            assert ds.img_infos[i]['filename'] == f'{stem}_leftImg8bit.png'
            np.testing.assert_array_equal(ds.get_gt_seg_map_by_idx(i), expected_train_ids(w, h, objects))


def test_cityscapes_out_dir_and_gt_dir(tmp_path):
    root = make_cityscapes(tmp_path / 'cityscapes')
    (root / 'gtFine').rename(root / 'gtFine_copy')
    counts = main(['cityscapes', str(root), '--gt-dir', 'gtFine_copy', '-o', str(tmp_path / 'lists')])
    assert counts['labels'] == 4
    assert (tmp_path / 'lists' / 'val.txt').read_text() == 'frankfurt/frankfurt_000000_000294\n'
    assert not (root / 'val.txt').exists()
    assert (root / 'gtFine_copy' / 'val' / 'frankfurt' / 'frankfurt_000000_000294_gtFine_labelTrainIds.png').is_file()


def test_cityscapes_errors(tmp_path, capsys):
    line = one_line_error(capsys, ['cityscapes', str(tmp_path / 'nope')])
    assert 'cityscapes_path' in line and 'nope' in line
    root = make_cityscapes(tmp_path / 'cityscapes')
    bad = root / 'gtFine' / 'val' / 'frankfurt' / 'frankfurt_000000_000294_gtFine_polygons.json'
    bad.write_text(json.dumps({'imgHeight': 4, 'imgWidth': 4, 'objects': [{'label': 'spaceship', 'polygon': rect(0, 0, 1, 1)}]}))
    line = one_line_error(capsys, ['cityscapes', str(root), '--nproc', '2'])
    assert str(bad) in line and "'spaceship' is not a Cityscapes label" in line


# ---- Pascal VOC 2012 + SBD ----

VOC = dict(train=['2007_000032', '2007_000039', '2007_000063'], val=['2007_000033', '2007_000042'])
SBD = dict(train=['2007_000039', '2007_000042', '2008_000002', '2008_000003'], val=['2007_000063', '2008_000004', '2008_000007'])


def sbd_mat(path, seg):
    "An SBD dataset/cls/*.mat file: struct GTcls with Segmentation, Boundaries (20 sparse maps), CategoriesPresent."
    import scipy.io, scipy.sparse
    boundaries = np.empty((20, 1), dtype=object)
    for k in range(20): boundaries[k, 0] = scipy.sparse.csc_matrix(seg == k + 1)
    present = np.unique(seg[(seg > 0) & (seg < 255)]).astype(np.uint8)[:, None]
    scipy.io.savemat(str(path), {'GTcls': {'Segmentation': seg, 'Boundaries': boundaries, 'CategoriesPresent': present}})


def make_voc_sbd(root):
    "VOCdevkit/VOC2012 (images, palette labels of train and val, the two lists) and benchmark_RELEASE/dataset; SBD's maps."
    voc, sbd = root / 'VOCdevkit' / 'VOC2012', root / 'benchmark_RELEASE' / 'dataset'
    for d in (voc / 'JPEGImages', voc / 'SegmentationClass', voc / 'ImageSets' / 'Segmentation', sbd / 'cls'): d.mkdir(parents=True)
    rng, maps = np.random.default_rng(0), {}
    for stem in sorted(set(sum(VOC.values(), []) + sum(SBD.values(), []))):
        Image.fromarray(rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)).save(voc / 'JPEGImages' / f'{stem}.jpg')
        seg = rng.integers(0, 21, (6, 9)).astype(np.uint8)
        if stem in sum(VOC.values(), []):
            save_label_png(np.where(seg == 3, 255, seg), str(voc / 'SegmentationClass' / f'{stem}.png'), VOC_PALETTE)
        if stem in sum(SBD.values(), []): sbd_mat(sbd / 'cls' / f'{stem}.mat', seg); maps[stem] = seg
    for split in ('train', 'val'):
        (voc / 'ImageSets' / 'Segmentation' / f'{split}.txt').write_text(''.join(s + '\n' for s in VOC[split]))
        (sbd / f'{split}.txt').write_text(''.join(s + '\n' for s in SBD[split]))
    return root / 'VOCdevkit', root / 'benchmark_RELEASE', maps


def test_voc_aug_labels_lists_and_config(tmp_path, capsys):
    devkit, sbd, maps = make_voc_sbd(tmp_path)
    voc = devkit / 'VOC2012'
    before = digests(tmp_path)
    counts = main(['voc_aug', str(devkit), str(sbd), '--nproc', '2'])
    assert 'segnb: warning: trainaug.txt lists 7 images; VOC2012 and SBD as released give 10582' in capsys.readouterr().err
    assert all(digests(tmp_path)[p] == d for p, d in before.items())
    assert sorted(p.name for p in (voc / 'SegmentationClassAug').iterdir()) == sorted(f'{s}.png' for s in maps)
    for stem, seg in maps.items():
        img = Image.open(voc / 'SegmentationClassAug' / f'{stem}.png')
        assert img.mode == 'L'
        np.testing.assert_array_equal(np.asarray(img), seg)
    sbd_all, voc_train, voc_val = set(SBD['train'] + SBD['val']), set(VOC['train']), set(VOC['val'])
    trainaug, aug = sorted((voc_train | sbd_all) - voc_val), sorted(sbd_all - voc_train - voc_val)
    sets = voc / 'ImageSets' / 'Segmentation'
    assert (sets / 'trainaug.txt').read_text().split() == trainaug
    assert (sets / 'aug.txt').read_text().split() == aug == ['2008_000002', '2008_000003', '2008_000004', '2008_000007']
    assert counts == dict(labels=len(maps), trainaug=len(trainaug), aug=len(aug))

    train = Config.fromfile(str(CONFIGS / 'pascal_voc12_aug.py')).data.train   # mmseg 0.30's config, unmodified
    ds = build_dataset(dict(train.to_dict(), data_root=str(voc)))
    assert len(ds) == len(VOC['train']) + len(aug)
    voc_part, aug_part = ds.datasets
    assert [i['filename'] for i in voc_part.img_infos] == [f'{s}.jpg' for s in VOC['train']]
    assert [i['filename'] for i in aug_part.img_infos] == [f'{s}.jpg' for s in aug]
    for i, stem in enumerate(aug): np.testing.assert_array_equal(aug_part.get_gt_seg_map_by_idx(i), maps[stem])


def test_voc_aug_out_dir(tmp_path):
    devkit, sbd, maps = make_voc_sbd(tmp_path)
    main(['voc_aug', str(devkit), str(sbd), '-o', str(tmp_path / 'aug_pngs')])
    assert sorted(p.stem for p in (tmp_path / 'aug_pngs').iterdir()) == sorted(maps)
    assert not (devkit / 'VOC2012' / 'SegmentationClassAug').exists()
    assert (devkit / 'VOC2012' / 'ImageSets' / 'Segmentation' / 'aug.txt').is_file()   # lists stay in the devkit


def test_voc_aug_errors(tmp_path, capsys, monkeypatch):
    devkit, sbd, _ = make_voc_sbd(tmp_path)
    line = one_line_error(capsys, ['voc_aug', str(devkit), str(tmp_path / 'nope')])
    assert 'aug_path' in line and 'nope' in line
    (devkit / 'VOC2012' / 'ImageSets' / 'Segmentation' / 'val.txt').rename(tmp_path / 'val.txt')
    line = one_line_error(capsys, ['voc_aug', str(devkit), str(sbd)])
    assert 'VOC2012 split' in line and 'val.txt' in line
    assert not (devkit / 'VOC2012' / 'SegmentationClassAug').exists()   # checked before anything is written
    (tmp_path / 'val.txt').rename(devkit / 'VOC2012' / 'ImageSets' / 'Segmentation' / 'val.txt')
    (sbd / 'dataset' / 'cls' / '2008_000003.mat').write_bytes(b'not a MATLAB file')
    line = one_line_error(capsys, ['voc_aug', str(devkit), str(sbd), '--nproc', '2'])
    assert '2008_000003.mat: not an SBD class label file' in line
    monkeypatch.setitem(sys.modules, 'scipy.io', None)   # as if scipy were not installed
    line = one_line_error(capsys, ['voc_aug', str(devkit), str(sbd)])
    assert 'pip install scipy' in line
