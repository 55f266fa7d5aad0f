"""Datasets on tiny fixtures in the exact layouts of Pascal VOC 2012, ADE20K and Cityscapes; mmseg 0.30's dataset
configs build unchanged; dataloaders are deterministic whatever the number of workers and split ranks disjointly."""
import os, os.path as osp, runpy
import numpy as np, pytest, torch
from PIL import Image
import segnb, segnb.data as D, segnb.data.loaders
from segnb.data import build_dataset, build_dataloader, save_label_png

FIXTURES = osp.join(osp.dirname(__file__), 'fixtures', 'configs', '_base_', 'datasets')  # mmseg 0.30's own dataset configs
pytestmark = pytest.mark.filterwarnings('ignore:The image decoding and encoding capabilities of TorchVision')


def _img(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _label(h, w, num_classes, seed, extra=()):
    lab = np.random.default_rng(seed).integers(0, num_classes, (h // 8 + 1, w // 8 + 1)).astype(np.uint8)
    lab = np.kron(lab, np.ones((8, 8), np.uint8))[:h, :w].copy()
    for v in extra: lab[0, :4] = v
    return lab


def make_voc(root, names=('2007_000032', '2007_000033', '2008_000001'), h=60, w=80):
    base = osp.join(root, 'VOCdevkit', 'VOC2012')
    for d in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'): os.makedirs(osp.join(base, d))
    for i, n in enumerate(names):
        Image.fromarray(_img(h, w, i)).save(osp.join(base, 'JPEGImages', n + '.jpg'))
        save_label_png(_label(h, w, 21, i, extra=(255,)), osp.join(base, 'SegmentationClass', n + '.png'), D.VOC_PALETTE)
    with open(osp.join(base, 'ImageSets/Segmentation/train.txt'), 'w') as f: f.write('\n'.join(names[:2]) + '\n')
    with open(osp.join(base, 'ImageSets/Segmentation/val.txt'), 'w') as f: f.write(names[2] + '\n')
    Image.fromarray(_img(h, w, 9)).save(osp.join(base, 'JPEGImages', '2009_999999.jpg'))  # not in any split
    return base


def make_ade(root, h=48, w=64):
    base = osp.join(root, 'ade', 'ADEChallengeData2016')
    for split, n in (('training', 2), ('validation', 1)):
        os.makedirs(osp.join(base, 'images', split)); os.makedirs(osp.join(base, 'annotations', split))
        for i in range(n):
            name = f'ADE_{"train" if split == "training" else "val"}_{i + 1:08d}'
            Image.fromarray(_img(h, w, i)).save(osp.join(base, 'images', split, name + '.jpg'))
            Image.fromarray(_label(h, w, 151, i, extra=(150,))).save(osp.join(base, 'annotations', split, name + '.png'))  # grey, 0 = other
    return base


def make_cityscapes(root, h=32, w=64):
    base = osp.join(root, 'cityscapes')
    for split, cities in (('train', ('aachen', 'bochum')), ('val', ('frankfurt',))):
        for c, city in enumerate(cities):
            os.makedirs(osp.join(base, 'leftImg8bit', split, city)); os.makedirs(osp.join(base, 'gtFine', split, city))
            stem = f'{city}_000000_0000{c}9'
            Image.fromarray(_img(h, w, c)).save(osp.join(base, 'leftImg8bit', split, city, stem + '_leftImg8bit.png'))
            gt = osp.join(base, 'gtFine', split, city, stem)
            Image.fromarray(_label(h, w, 19, c, extra=(255,))).save(gt + '_gtFine_labelTrainIds.png')
            Image.fromarray(_label(h, w, 34, c)).save(gt + '_gtFine_labelIds.png')  # other gtFine files are ignored
            Image.fromarray(_img(h, w, 5)).save(gt + '_gtFine_color.png')
    return base


def mmseg_config(name, data_root, loader):
    "An mmseg 0.30 dataset config (our copy run as Python or read by segnb.config, or segnb's package copy), data_root -> fixture."
    path = osp.join(FIXTURES, name)
    if loader == 'package': path = osp.join(osp.dirname(segnb.__file__), 'configs', '_base_', 'datasets', name)
    if loader in ('python', 'package'): cfg = runpy.run_path(path)
    else: cfg = pytest.importorskip('segnb.config').Config.fromfile(path)
    for split in ('train', 'val', 'test'): cfg['data'][split]['data_root'] = data_root
    return cfg


@pytest.mark.parametrize('loader', ['python', 'segnb.config', 'package'])
@pytest.mark.parametrize('name,make,crop', [('pascal_voc12.py', make_voc, (512, 512)), ('ade20k.py', make_ade, (512, 512)),
                                            ('cityscapes.py', make_cityscapes, (512, 1024))])
def test_mmseg_dataset_configs_build(tmp_path, name, make, crop, loader):
    cfg = mmseg_config(name, make(str(tmp_path)), loader)
    train = build_dataset(cfg['data']['train'])
    assert len(train) == 2
    s = train[(0, 0)]
    assert s['img'].shape == (3, *crop) and s['img'].dtype == torch.float32
    assert s['gt_semantic_seg'].shape == (1, *crop) and s['gt_semantic_seg'].dtype == torch.int64
    assert set(s['img_metas']) == set(D.DEFAULT_META_KEYS)
    val = build_dataset(cfg['data']['val'], dict(test_mode=True))
    assert len(val) == 1
    t = val[0]
    assert len(t['img']) == 1 and t['img'][0].shape[0] == 3
    h, w = t['img_metas'][0]['img_shape'][:2]
    long_, short = max(cfg['test_pipeline'][1]['img_scale']), min(cfg['test_pipeline'][1]['img_scale'])
    assert (max(h, w) == long_ or min(h, w) == short) and max(h, w) <= long_ and min(h, w) <= short
    batch = D.collate([train[(0, 1)], train[(1, 2)]])
    assert batch['img'].shape == (2, 3, *crop)


def test_voc_fixture(tmp_path):
    base = make_voc(str(tmp_path))
    ds = D.PascalVOCDataset(pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')], data_root=base,
                            img_dir='JPEGImages', ann_dir='SegmentationClass', split='ImageSets/Segmentation/train.txt')
    assert [i['filename'] for i in ds.img_infos] == ['2007_000032.jpg', '2007_000033.jpg']
    assert ds.img_infos[1]['ann']['seg_map'] == '2007_000033.png'
    gt = ds.get_gt_seg_map_by_idx(1)
    assert gt.shape == (60, 80) and gt[0, 0] == 255 and gt.max() == 255 and gt[gt != 255].max() < 21
    assert (gt == _label(60, 80, 21, 1, extra=(255,))).all()
    assert len(ds.CLASSES) == 21 and len(ds.PALETTE) == 21
    img = ds[0]['img']
    assert img.shape == (3, 60, 80) and img.dtype == torch.uint8
    with pytest.raises(D.SegnbError, match='split'):
        D.PascalVOCDataset(pipeline=[], data_root=base, img_dir='JPEGImages', ann_dir='SegmentationClass', split=None)


def test_ade_fixture_reduces_zero_label(tmp_path):
    base = make_ade(str(tmp_path))
    ds = D.ADE20KDataset(pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', reduce_zero_label=True)],
                         data_root=base, img_dir='images/training', ann_dir='annotations/training')
    assert ds.reduce_zero_label and len(ds.CLASSES) == 150 and len(ds.PALETTE) == 150
    raw = _label(48, 64, 151, 0, extra=(150,))
    expected = np.where(raw == 0, 255, raw.astype(int) - 1)
    assert (ds[0]['gt_semantic_seg'].numpy() == expected).all()
    assert (ds.get_gt_seg_map_by_idx(0) == raw).all()  # evaluation reduces in intersect_and_union, as mmseg 0.30
    pytest.importorskip('segnb.metrics')
    pred = np.where(expected == 255, 0, expected)
    assert ds.evaluate(ds.pre_eval(pred, 0))['aAcc'] == 1.0
    assert ds.evaluate(ds.pre_eval((pred + 1) % 150, 0))['aAcc'] == 0.0


def test_cityscapes_fixture_nested_cities(tmp_path):
    base = make_cityscapes(str(tmp_path))
    ds = D.CityscapesDataset(pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')], data_root=base,
                             img_dir='leftImg8bit/train', ann_dir='gtFine/train')
    assert [i['filename'] for i in ds.img_infos] == ['aachen/aachen_000000_000009_leftImg8bit.png',
                                                      'bochum/bochum_000000_000019_leftImg8bit.png']
    assert ds.img_infos[0]['ann']['seg_map'] == 'aachen/aachen_000000_000009_gtFine_labelTrainIds.png'
    s = ds[1]
    assert s['gt_semantic_seg'].shape == (32, 64) and int(s['gt_semantic_seg'][0, 0]) == 255
    os.remove(osp.join(base, 'gtFine/train/bochum/bochum_000000_000019_gtFine_labelTrainIds.png'))
    with pytest.raises(D.SegnbError, match='bochum_000000_000019_leftImg8bit.png has no label file'):
        D.CityscapesDataset(pipeline=[], data_root=base, img_dir='leftImg8bit/train', ann_dir='gtFine/train')


def _shapes(tmp_path, pipeline, split='train'):
    return build_dataset(dict(type='ShapesDataset', data_root=str(tmp_path / 'shapes'), num_train=12, num_val=4, size=64,
                              img_dir=f'img_dir/{split}', ann_dir=f'ann_dir/{split}', pipeline=pipeline))


def test_workers_do_not_change_augmentations(tmp_path):
    ds = _shapes(tmp_path, D.train_pipeline_cfg(crop_size=(48, 48), img_scale=(256, 64)))
    runs = []
    for workers in (0, 2):
        dl = build_dataloader(ds, samples_per_gpu=3, workers_per_gpu=workers, seed=7)
        dl.sampler.set_epoch(1)
        runs.append([b['img'] for b in dl])
    assert len(runs[0]) == 4
    for a, b in zip(*runs): assert torch.equal(a, b)


def test_resume_mid_epoch_gives_same_samples(tmp_path):
    ds = _shapes(tmp_path, D.train_pipeline_cfg(crop_size=(48, 48), img_scale=(256, 64)))
    dl = build_dataloader(ds, samples_per_gpu=3, workers_per_gpu=0, seed=7)
    full = [b['img'] for b in dl]
    dl.sampler.set_start(6)  # two batches of 3 already seen
    rest = [b['img'] for b in dl]
    assert len(rest) == 2 and all(torch.equal(a, b) for a, b in zip(full[2:], rest))


def test_dist_shares_are_disjoint(tmp_path, monkeypatch):
    ds = _shapes(tmp_path, [dict(type='LoadImageFromFile'), dict(type='Collect', keys=[], meta_keys=['ori_filename'])])
    def names(rank, shuffle):
        monkeypatch.setattr(segnb.data.loaders, 'get_dist_info', lambda: (rank, 3))
        dl = build_dataloader(ds, samples_per_gpu=2, workers_per_gpu=0, dist=True, shuffle=shuffle, seed=1)
        return [m['ori_filename'] for b in dl for m in b['img_metas']]
    train = [names(r, True) for r in range(3)]
    assert all(len(t) == 4 for t in train) and len(set(sum(train, []))) == 12
    val = [names(r, False) for r in range(3)]
    assert sorted(sum(val, [])) == sorted(i['filename'] for i in ds.img_infos)


def test_evaluate_with_metrics(tmp_path):
    pytest.importorskip('segnb.metrics')
    ds = _shapes(tmp_path, [dict(type='LoadImageFromFile')], split='val')
    gts = list(ds.get_gt_seg_maps())
    perfect = ds.evaluate(sum((ds.pre_eval(g, i) for i, g in enumerate(gts)), []))
    assert perfect['mIoU'] == 1.0 and perfect['aAcc'] == 1.0 and perfect['IoU.circle'] == 1.0
    wrong = [np.where(g == 1, 2, g) for g in gts]  # circles predicted as squares
    res = ds.evaluate(sum((ds.pre_eval(p, i) for i, p in enumerate(wrong)), []))
    assert res['IoU.circle'] == 0.0 and res['IoU.background'] == 1.0 and 0 < res['mIoU'] < 1
    direct = ds.evaluate(wrong)
    assert abs(direct['mIoU'] - res['mIoU']) < 1e-6


def test_make_shapes_race(tmp_path):
    import multiprocessing as mp
    root = str(tmp_path / 'race')
    with mp.get_context('fork').Pool(4) as pool: roots = pool.starmap(D.make_shapes, [(root, 8, 2, 32, 0, False)] * 4)
    assert roots == [root] * 4
    assert sorted(os.listdir(tmp_path)) == ['race']  # no temporary folder left behind
    assert len(os.listdir(osp.join(root, 'img_dir', 'train'))) == 8 and len(os.listdir(osp.join(root, 'ann_dir', 'val'))) == 2


OLD_NAMES = ['logger', 'SHAPES_CLASSES', 'SHAPES_PALETTE', 'DEFAULT_META_KEYS', 'VOC_PALETTE', 'make_shapes_sample',
             'save_label_png', 'make_shapes', 'Compose', 'load_image', 'load_label', 'LoadImageFromFile', 'LoadAnnotations',
             'rescale_size', 'resize_img', 'resize_seg', 'Resize', 'RandomCrop', 'RandomFlip', 'pad_br', 'Pad',
             'adjust_saturation_hsv', 'PhotoMetricDistortion', 'Normalize', 'DefaultFormatBundle', 'ImageToTensor', 'Collect',
             'MultiScaleFlipAug', 'forked_rng', 'scan_files', 'CustomDataset', 'ShapesDataset', 'PascalVOCDataset',
             'CityscapesDataset', 'ADE20KDataset', 'ConcatDataset', 'RepeatDataset', 'build_dataset', 'sample_seed',
             'SeededSampler', 'collate', 'worker_init_fn', 'build_dataloader', 'colorize', 'overlay', 'save_image',
             'show_samples', 'train_pipeline_cfg', 'pipeline_throughput']  # segnb.data's __all__ when it was one module


def test_package_keeps_every_name_of_the_old_module():
    import importlib, segnb.data.datasets as DS, segnb.data.pipelines as P
    assert set(OLD_NAMES) <= set(D.__all__) and all(hasattr(D, n) for n in D.__all__)
    for pkg, leaves in ((DS, ['custom', 'shapes', 'voc', 'cityscapes', 'ade', 'more', 'dataset_wrappers', 'builder']),
                        (P, ['compose', 'loading', 'transforms', 'formatting', 'test_time_aug'])):
        names = [n for leaf in leaves for n in importlib.import_module(f'{pkg.__name__}.{leaf}').__all__ if n != 'logger']
        assert sorted(pkg.__all__) == sorted(names)   # the hand-written lists of the packages follow their modules
    for name in ('SegnbError', 'DATASETS', 'PIPELINES', 'build_from_cfg', 'get_dist_info', 'show_progress'):
        assert hasattr(D, name)   # importable from segnb.data before, still
