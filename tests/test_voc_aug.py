"""mmseg 0.30's `pspnet/pspnet_r50-d8_512x512_20k_voc12aug.py`, unmodified (tests/fixtures/mmseg_configs holds it and
its `_base_` files, copied from mmseg 0.30), trains with `python -m segnb.train` on a tiny Pascal VOC 2012 + SBD folder
in the real layout, offline, from `open-mmlab://resnet50_v1c` found in a pre-filled torch hub cache.

Only `data_root`, the schedule and the sizes change on the command line. The cached "pretrained" file is segnb's own
ResNetV1c-50 state_dict (mmcv's keys and shapes) with every float tensor moved by seeded noise, so that no default
initialisation can equal it. The backbone must start from exactly those tensors: the first checkpoint (after one SGD
step) holds each parameter `p1` and its momentum buffer, which after the first step is the step's direction, so
`p1 + lr * buffer` gives back the parameter the run started from, to float32 rounding.
"""
import json, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from segnb.config import Config
from segnb.data import VOC_PALETTE, make_shapes_sample, save_label_png
from segnb.models.backbones.resnet import ResNetV1c

TESTS = Path(__file__).parent
CONFIG = TESTS / 'fixtures' / 'mmseg_configs' / 'pspnet' / 'pspnet_r50-d8_512x512_20k_voc12aug.py'
CACHED = 'resnet50_v1c-2cccc1ad.pth'   # the file name of open-mmlab://resnet50_v1c's URL in mmcv 1.7's table
SPLITS = dict(train=['2007_000032', '2007_000039'], aug=['2007_000121', '2008_000002', '2008_000003'], val=['2007_000033'])


def make_voc_aug(root):
    "VOC2012 with SBD's labels as mmseg's voc_aug.py writes them: palette PNGs in SegmentationClass, grey ones in ...Aug."
    for d in ('JPEGImages', 'SegmentationClass', 'SegmentationClassAug', 'ImageSets/Segmentation'): (root / d).mkdir(parents=True)
    for i, stem in enumerate(s for stems in SPLITS.values() for s in stems):
        img, lab = make_shapes_sample(i, size=(40, 56))
        Image.fromarray(img.transpose(1, 2, 0)).save(root / 'JPEGImages' / f'{stem}.jpg')
        if stem in SPLITS['aug']: Image.fromarray(lab.astype(np.uint8)).save(root / 'SegmentationClassAug' / f'{stem}.png')
        else: save_label_png(lab, str(root / 'SegmentationClass' / f'{stem}.png'), VOC_PALETTE)
    for name, stems in SPLITS.items(): (root / 'ImageSets' / 'Segmentation' / f'{name}.txt').write_text(''.join(s + '\n' for s in stems))
    return root


def make_pretrained(torch_home):
    "A ResNetV1c-50 state_dict, every float tensor moved by seeded noise, where torch.hub keeps the download."
    torch.manual_seed(1234)
    model = ResNetV1c(depth=50)
    sd, params = model.state_dict(), [n for n, _ in model.named_parameters()]
    g = torch.Generator().manual_seed(5678)
    sd = {k: v + 0.01 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v for k, v in sd.items()}
    path = torch_home / 'hub' / 'checkpoints' / CACHED
    path.parent.mkdir(parents=True)
    torch.save(sd, path)
    return path, sd, params


def cfg_options(data_root):
    "The data root; 2 iterations of 2 samples (PSPHead's 1x1 pooling needs 2 for BatchNorm); 16-pixel crops."
    opts = ['runner.max_iters=2', 'checkpoint_config.interval=1', 'evaluation.interval=2', 'log_config.interval=1',
            'data.samples_per_gpu=2', 'data.workers_per_gpu=0', 'data.train.pipeline.2.img_scale=(32,16)',
            'data.train.pipeline.3.crop_size=(16,16)', 'data.train.pipeline.7.size=(16,16)']
    for split in ('train', 'val', 'test'): opts.append(f'data.{split}.data_root={data_root}')
    return opts + ['data.val.pipeline.1.img_scale=(32,16)', 'data.test.pipeline.1.img_scale=(32,16)']


def offline_env(tmp_path):
    "This environment with the hub cache and mmcv's home in `tmp_path`, and every download pointed at a closed port."
    e = {k: v for k, v in os.environ.items() if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')}
    proxy = 'http://127.0.0.1:9'
    e.update(TORCH_HOME=str(tmp_path / 'torch'), MMCV_HOME=str(tmp_path / 'mmcv'), SEGNB_DOWNLOAD_TIMEOUT='5',
             http_proxy=proxy, https_proxy=proxy, HTTP_PROXY=proxy, HTTPS_PROXY=proxy, no_proxy='', NO_PROXY='')
    return e


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "Train the unmodified config once; the work_dir, the cached file (path, tensors, parameter names), the output."
    tmp = tmp_path_factory.mktemp('vocaug')
    root = make_voc_aug(tmp / 'data' / 'VOCdevkit' / 'VOC2012')
    cached, sd, params = make_pretrained(tmp / 'torch')
    wd = tmp / 'work_dir'
    cmd = [sys.executable, '-m', 'segnb.train', str(CONFIG), '--work-dir', str(wd), '--seed', '0',
           '--cfg-options', *cfg_options(root)]
    p = subprocess.run(cmd, cwd=tmp, env=offline_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout[-4000:]
    return dict(wd=wd, cached=cached, sd=sd, params=params, out=p.stdout)


def log_records(wd):
    (log,) = wd.glob('*.log.json')
    return [json.loads(l) for l in log.read_text().splitlines()[1:]]


def test_trains_on_voc_and_sbd_concatenated(run):
    "VOC's train split and SBD's aug split are read as two datasets (the config's lists, unchanged) and trained on."
    wd, text = run['wd'], next(run['wd'].glob('*.log')).read_text()
    for name, stems in SPLITS.items(): assert f'Loaded {len(stems)} images from ' in text and f'Segmentation/{name}.txt' in text
    train = Config.fromfile(wd / CONFIG.name).data.train
    assert train.ann_dir == ['SegmentationClass', 'SegmentationClassAug'] and train.img_dir == 'JPEGImages'
    assert train.split == ['ImageSets/Segmentation/train.txt', 'ImageSets/Segmentation/aug.txt']
    records = log_records(wd)
    assert [r['iter'] for r in records if r['mode'] == 'train'] == [1, 2]
    assert all(np.isfinite(r['loss']) for r in records if r['mode'] == 'train')
    assert [r['iter'] for r in records if r['mode'] == 'val' and 'mIoU' in r] == [2]
    ckpt = torch.load(wd / 'iter_2.pth', map_location='cpu', weights_only=True, mmap=True)
    assert len(ckpt['meta']['CLASSES']) == 21 and ckpt['state_dict']['decode_head.conv_seg.weight'].shape[0] == 21


def test_pretrained_came_from_the_cache_offline(run):
    "The name resolved to the cached file: nothing downloaded, every key fitted."
    text = run['out'] + next(run['wd'].glob('*.log')).read_text()
    assert 'loaded open-mmlab://resnet50_v1c into ResNetV1c' in text
    assert 'downloading' not in text and not any(w in text for w in ('missing keys', 'unexpected keys', 'size mismatch'))


def test_backbone_started_from_the_cached_tensors(run):
    "`p1 + lr * momentum_buffer` after the first SGD step is the parameter the backbone started from."
    ckpt = torch.load(run['wd'] / 'iter_1.pth', map_location='cpu', weights_only=True, mmap=True)
    state, (group,) = ckpt['optimizer']['state'], ckpt['optimizer']['param_groups']
    lr = group['lr']   # the first step's: poly at progress 0 is the config's lr
    assert lr == 0.01 and group['momentum'] == 0.9 and group['weight_decay'] == 0.0005 and not group['nesterov']
    assert [r['lr'] for r in log_records(run['wd']) if r['mode'] == 'train' and r['iter'] == 1] == [lr]
    for idx, name in zip(group['params'], run['params']):   # the backbone's parameters come first
        p1, buf, p0 = ckpt['state_dict'][f'backbone.{name}'], state[idx]['momentum_buffer'], run['sd'][name]
        assert p1.shape == buf.shape == p0.shape, name
        torch.testing.assert_close(p1 + lr * buf, p0, rtol=0, atol=1e-6, msg=name)
        assert not torch.equal(p1, p0), name   # it did train
