"""Every dataset config of mmseg 0.30 (`configs/_base_/datasets/*.py`, copied byte for byte into
tests/fixtures/mmseg_configs/_base_/datasets) builds with segnb, unmodified but for `data_root`, over a tiny folder in
that dataset's layout on disk (as the release or mmseg's converter leaves it), and each of `data.train`, `data.val`
and `data.test` gives a sample through the config's own pipeline.

The layouts are written here from the datasets' documentation, not from the configs, so that a config whose folders
or a preset whose suffixes disagree with the files fails.
"""
import os.path as osp
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
import segnb.data.datasets.more  # noqa: F401  (registers the presets)
from segnb.config import Config
from segnb.data import VOC_PALETTE, build_dataset, save_label_png

CONFIGS = Path(__file__).parent / 'fixtures' / 'mmseg_configs' / '_base_' / 'datasets'


def pairs(img_dir, ann_dir, stems, img_suffix, ann_suffix):
    "`(image, label)` paths of `stems` under the two folders."
    return [(f'{img_dir}/{s}{img_suffix}', f'{ann_dir}/{s}{ann_suffix}') for s in stems]


def vessels(img_stems, ann_suffix):
    "The retinal-vessel converters' layout: `images/{training,validation}`, `annotations/{training,validation}`."
    return {'files': pairs('images/training', 'annotations/training', img_stems[:1], '.png', ann_suffix)
            + pairs('images/validation', 'annotations/validation', img_stems[1:], '.png', ann_suffix),
            'values': [0, 1], 'reduce': False}


def tiles(train, val, ann_infix='', values=(0, 1), reduce=False):
    "The remote-sensing converters' layout: `img_dir/{train,val}/X.png`, `ann_dir/{train,val}/X<infix>.png`."
    return {'files': pairs('img_dir/train', 'ann_dir/train', train, '.png', ann_infix + '.png')
            + pairs('img_dir/val', 'ann_dir/val', val, '.png', ann_infix + '.png'), 'values': list(values), 'reduce': reduce}


CONTEXT = {'files': pairs('JPEGImages', 'SegmentationClassContext', ['2008_000002', '2008_000007'], '.jpg', '.png'),
           'splits': {'ImageSets/SegmentationContext/train.txt': ['2008_000002'],
                      'ImageSets/SegmentationContext/val.txt': ['2008_000007']}, 'values': [0, 1, 59]}
VOC = {'files': pairs('JPEGImages', 'SegmentationClass', ['2007_000032', '2007_000033'], '.jpg', '.png'),
       'splits': {'ImageSets/Segmentation/train.txt': ['2007_000032'], 'ImageSets/Segmentation/val.txt': ['2007_000033']},
       'values': [0, 1, 20, 255], 'reduce': False, 'palette': VOC_PALETTE}
VOC_AUG = {**VOC, 'files': VOC['files'] + pairs('JPEGImages', 'SegmentationClassAug', ['2007_000121'], '.jpg', '.png'),
           'splits': {**VOC['splits'], 'ImageSets/Segmentation/aug.txt': ['2007_000121']}}
ADE = {'files': pairs('images/training', 'annotations/training', ['ADE_train_00000001'], '.jpg', '.png')
       + pairs('images/validation', 'annotations/validation', ['ADE_val_00000001'], '.jpg', '.png'),
       'values': [0, 1, 150], 'reduce': True}
CITYSCAPES = {'files': pairs('leftImg8bit/train/aachen', 'gtFine/train/aachen', ['aachen_000000_000019'],
                             '_leftImg8bit.png', '_gtFine_labelTrainIds.png')
              + pairs('leftImg8bit/val/frankfurt', 'gtFine/val/frankfurt', ['frankfurt_000000_000294'],
                      '_leftImg8bit.png', '_gtFine_labelTrainIds.png'), 'values': [0, 18, 255], 'reduce': False}
FACES = {'files': [p for d in ('NatOcc_hand_sot', 'NatOcc_object', 'RandOcc') for p in pairs(f'{d}/img', f'{d}/mask', ['00001'], '.jpg', '.png')]
         + pairs('RealOcc/image', 'RealOcc/mask', ['00101'], '.jpg', '.png'),
         'splits': {'train.txt': ['00001'], 'RealOcc/split/val.txt': ['00101']}, 'values': [0, 1], 'reduce': False}

LAYOUTS = {
    'ade20k': ADE, 'ade20k_640x640': ADE,
    'cityscapes': CITYSCAPES, 'cityscapes_1024x1024': CITYSCAPES, 'cityscapes_768x768': CITYSCAPES,
    'cityscapes_769x769': CITYSCAPES, 'cityscapes_832x832': CITYSCAPES,
    'coco-stuff10k': {'files': pairs('images/train2014', 'annotations/train2014', ['COCO_train2014_000000000077'], '.jpg', '_labelTrainIds.png')
                      + pairs('images/test2014', 'annotations/test2014', ['COCO_train2014_000000000139'], '.jpg', '_labelTrainIds.png'),
                      'values': [0, 1, 171], 'reduce': True},
    'coco-stuff164k': {'files': pairs('images/train2017', 'annotations/train2017', ['000000000009'], '.jpg', '_labelTrainIds.png')
                       + pairs('images/val2017', 'annotations/val2017', ['000000000139'], '.jpg', '_labelTrainIds.png'),
                       'values': [0, 170, 255], 'reduce': False},
    'pascal_context': {**CONTEXT, 'reduce': False}, 'pascal_context_59': {**CONTEXT, 'reduce': True},
    'pascal_voc12': VOC, 'pascal_voc12_aug': VOC_AUG,
    'loveda': tiles(['0'], ['2522'], values=(0, 1, 7), reduce=True),
    'potsdam': tiles(['2_10_0_0_512_512'], ['2_13_0_0_512_512'], values=(0, 1, 6), reduce=True),
    'vaihingen': tiles(['area1_0_0_512_512'], ['area2_0_0_512_512'], values=(0, 1, 6), reduce=True),
    'isaid': tiles(['P0000_0_896_0_896'], ['P0003_0_896_0_896'], ann_infix='_instance_color_RGB', values=(0, 15)),
    'drive': vessels(['21', '01'], '_manual1.png'),
    'stare': vessels(['im0001', 'im0319'], '.ah.png'),
    'chase_db1': vessels(['Image_01L', 'Image_11L'], '_1stHO.png'),
    'hrf': vessels(['01_dr', '06_dr'], '.png'),
    'occlude_face': FACES,
}


def write_layout(root, layout, hw=(32, 32)):
    "Images (RGB) and label maps (bands of the layout's values; palette PNGs where it has a palette), and split files."
    for i, (img, ann) in enumerate(layout['files']):
        label = np.array(layout['values'], np.uint8)[(np.arange(hw[1]) + i) * len(layout['values']) // hw[1] % len(layout['values'])]
        label = np.broadcast_to(label, hw)
        for rel in (img, ann): (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.stack([label // 2, label, 255 - label], -1)).save(root / img)
        if 'palette' in layout: save_label_png(label, str(root / ann), layout['palette'])
        else: Image.fromarray(np.ascontiguousarray(label)).save(root / ann)
    for rel, stems in layout.get('splits', {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(''.join(s + '\n' for s in stems))
    return root


def set_data_root(cfg, root):
    "Point every dataset of a `data.*` entry (a dataset, a list of them, a RepeatDataset) at `root`."
    if isinstance(cfg, list):
        for c in cfg: set_data_root(c, root)
    elif 'dataset' in cfg: set_data_root(cfg.dataset, root)
    else: cfg.data_root = root


def leaves(ds):
    "The datasets inside the wrappers."
    if hasattr(ds, 'datasets'): return [d for sub in ds.datasets for d in leaves(sub)]
    return leaves(ds.dataset) if hasattr(ds, 'dataset') else [ds]


def test_every_dataset_config_has_a_layout():
    assert sorted(p.stem for p in CONFIGS.glob('*.py')) == sorted(LAYOUTS)


def check_data_builds(cfg, name, root, layout=None):
    """Build `data.train/val/test` of `cfg` over the layout (default `LAYOUTS[name]`) written at `root`, draw a sample
    of each, and check that together they read every image of the layout."""
    layout = layout or LAYOUTS[name]
    loaded = {v - 1 if layout['reduce'] else v for v in layout['values'] if not (layout['reduce'] and v == 0)} | {255}
    found = set()
    for split in ('train', 'val', 'test'):
        if split not in cfg.data:
            assert (name, split) == ('occlude_face', 'test')   # mmseg's face config has no data.test
            continue
        set_data_root(cfg.data[split], str(root))
        ds = build_dataset(cfg.data[split], None if split == 'train' else dict(test_mode=True))
        for d in leaves(ds):
            assert d.reduce_zero_label == layout['reduce'] and len(d.PALETTE) == len(d.CLASSES)
            found |= {osp.relpath(osp.join(d.img_dir, i['filename']), root) for i in d.img_infos}
        sample = ds[(0, 0)]   # a seeded draw: the same crop each run
        if split == 'train':
            img, seg = sample['img'], sample['gt_semantic_seg']
            assert img.dtype == torch.float32 and img.shape[0] == 3 and seg.shape == (1, *img.shape[1:])
            assert set(seg.unique().tolist()) <= loaded, (name, seg.unique().tolist(), loaded)
        else:
            assert isinstance(sample['img'], list) and sample['img'][0].shape[0] == 3
            assert sample['img_metas'][0]['ori_shape'][:2] == (32, 32)
    assert found == {img for img, _ in layout['files']}   # every image of the layout is read, by some split


@pytest.mark.parametrize('name', sorted(LAYOUTS))
def test_config_builds_and_samples(name, tmp_path):
    root = write_layout(tmp_path / 'data', LAYOUTS[name])
    check_data_builds(Config.fromfile(str(CONFIGS / f'{name}.py')), name, root)
