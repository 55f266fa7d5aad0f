"Cityscapes results format, the `cityscapes` metric (against hand counts), and `segnb.test --format-only/--eval cityscapes`."
import json, math, os
import numpy as np
import pytest
import torch
from PIL import Image
from segnb.config import Config
from segnb.data import CityscapesDataset
from segnb.models import build_segmentor
from segnb.train import DEFAULT_CONFIG
import segnb.test as segtest

# label ids: unlabeled 0, road 7, sidewalk 8, parking 9 (ignored in evaluation), person 24, car 26
# train id -> label id, from cityscapesScripts' labels.py (255, the ignored train id, goes back to 0, unlabeled)
TRAIN_TO_ID = {0: 7, 1: 8, 2: 11, 3: 12, 4: 13, 5: 17, 6: 19, 7: 20, 8: 21, 9: 22, 10: 23, 11: 24, 12: 25, 13: 26,
               14: 27, 15: 28, 16: 31, 17: 32, 18: 33, 255: 0}
AVG_CAR, AVG_PERSON = 12794.0202738185, 3462.4756337644   # the official script's average instance sizes


def scene():
    "An 8x8 ground truth (label ids, instance ids) and a prediction (train ids), every pixel counted in the tests."
    ids = np.zeros((8, 8), np.int64)                     # row 0: unlabeled (void)
    ids[1:4] = 7                                         # rows 1-3: road, 24 px
    ids[4] = 9                                           # row 4: parking, 8 px, ignored in evaluation
    ids[5:, :4] = 26; ids[5:, 4:6] = 24; ids[5:, 6:] = 26  # a 12 px car, a 6 px person, a 6 px car
    inst = ids.copy()
    inst[5:, :4] = 26001; inst[5:, 4:6] = 24001; inst[5:, 6:] = 26002
    pred = np.full((8, 8), 255, np.int64)                # row 0, cols 0-3: 255 -> unlabeled, right
    pred[0, 4:] = 0                                      # void predicted road: costs nothing
    pred[1] = 1; pred[2:4] = 0                           # road: 8 px sidewalk, 16 px road
    pred[4] = 13                                         # parking predicted car: costs nothing
    pred[5:, :2] = 13; pred[5:, 2:4] = 14                # car 1: 6 px car, 6 px truck
    pred[5:, 4] = 11; pred[5:, 5] = 12                   # person: 3 px person, 3 px rider
    pred[5:, 6:] = 13                                    # car 2: all found
    train = np.vectorize({0: 255, 7: 0, 9: 255, 24: 11, 26: 13}.get)(ids)
    return ids, inst, train, pred


def write_cityscapes(root, frames, maps, split='val', city='aachen'):
    "The release's layout: leftImg8bit/<split>/<city>/*_leftImg8bit.png and gtFine/<split>/<city>/*_gtFine_*.png."
    for frame, (ids, inst, train) in zip(frames, maps):
        stem = f'{city}_{frame}'
        for top in ('leftImg8bit', 'gtFine'): os.makedirs(root / top / split / city, exist_ok=True)
        Image.fromarray(np.full(ids.shape + (3,), 90, np.uint8)).save(root / 'leftImg8bit' / split / city / f'{stem}_leftImg8bit.png')
        gt = root / 'gtFine' / split / city
        Image.fromarray(ids.astype(np.uint8)).save(gt / f'{stem}_gtFine_labelIds.png')
        Image.fromarray(train.astype(np.uint8)).save(gt / f'{stem}_gtFine_labelTrainIds.png')
        Image.fromarray(inst.astype(np.uint16)).save(gt / f'{stem}_gtFine_instanceIds.png')


@pytest.fixture
def one_scene(tmp_path):
    ids, inst, train, pred = scene()
    root = tmp_path / 'cityscapes'
    write_cityscapes(root, ['000000_000019'], [(ids, inst, train)])
    ds = CityscapesDataset(pipeline=[], data_root=str(root), img_dir='leftImg8bit/val', ann_dir='gtFine/val')
    return ds, pred, tmp_path


def test_format_results_names_values_palette(one_scene):
    ds, pred, tmp = one_scene
    files = ds.format_results([pred], str(tmp / 'out'))
    assert [os.path.basename(f) for f in files] == ['aachen_000000_000019_leftImg8bit.png']
    with Image.open(files[0]) as im:
        assert im.mode == 'P'
        values, palette = np.array(im), np.array(im.getpalette()).reshape(-1, 3)
    assert np.array_equal(values, np.vectorize(TRAIN_TO_ID.get)(pred))
    assert palette[7].tolist() == [128, 64, 128] and palette[26].tolist() == [0, 0, 142] and palette[24].tolist() == [220, 20, 60]
    assert palette[0].tolist() == [0, 0, 0] and palette[6].tolist() == [81, 0, 81] and len(palette) == 35
    raw = ds.format_results([pred], str(tmp / 'raw'), to_label_id=False)   # train ids kept
    with Image.open(raw[0]) as im: assert np.array_equal(np.array(im), pred.astype(np.uint8))


def test_cityscapes_metric_against_hand_counts(one_scene):
    ds, pred, tmp = one_scene
    res = ds.evaluate([pred], metric=['cityscapes', 'mIoU'])
    cls, inst = res['classScores'], res['classInstScores']
    # road: 16 right, 8 missed as sidewalk; void and parking predicted anything cost nothing
    assert cls['road'] == 16 / 24 and cls['sidewalk'] == 0 and cls['car'] == 12 / 18 and cls['truck'] == 0
    assert cls['person'] == 3 / 6 and cls['rider'] == 0
    assert all(math.isnan(cls[n]) for n in ('unlabeled', 'parking', 'caravan', 'building', 'bus', 'sky'))
    assert math.isclose(res['averageScoreClasses'], (16 / 24 + 12 / 18 + 3 / 6) / 6)
    # categories: sidewalk-for-road, truck-for-car and rider-for-person are right at this level
    cat = res['categoryScores']
    assert cat['flat'] == cat['vehicle'] == cat['human'] == 1.0 and res['averageScoreCategories'] == 1.0
    assert math.isnan(cat['void']) and math.isnan(cat['nature'])
    # iIoU: each instance weighted by average size / its size
    car_tp = 6 * AVG_CAR / 12 + 6 * AVG_CAR / 6; car_fn = 6 * AVG_CAR / 12
    assert math.isclose(inst['car'], car_tp / (car_tp + car_fn)) and math.isclose(inst['car'], 0.75)
    assert math.isclose(inst['person'], 0.5) and inst['truck'] == 0 and inst['rider'] == 0
    assert math.isnan(inst['road']) and math.isnan(inst['bus'])
    assert math.isclose(res['averageScoreInstClasses'], (0.75 + 0.5) / 4)
    assert res['categoryInstScores']['human'] == 1.0 and res['categoryInstScores']['vehicle'] == 1.0
    assert math.isnan(res['categoryInstScores']['flat'])
    # the rest of the script's dict
    assert res['confMatrix'][7][8] == 8 and res['confMatrix'][9][26] == 8 and sum(map(sum, res['confMatrix'])) == 64
    assert res['priors']['road'] == 24 / 64 and res['labels']['car'] == 26
    (scores,) = res['perImageScores'].values()   # the script's counts: ignored pixels, and those predicted wrong
    assert scores == dict(nbNotIgnoredPixels=16, nbCorrectPixels=12)
    # the generic metric on train ids, from the same call
    assert math.isclose(res['mIoU'], 11 / 36, abs_tol=5e-5)   # rounded to 4 places, as mmseg's summary


def test_cityscapes_metric_of_formatted_files_and_errors(one_scene):
    ds, pred, tmp = one_scene
    files = ds.format_results([pred], str(tmp / 'out'))
    res = ds.evaluate(files, metric='cityscapes', imgfile_prefix=str(tmp / 'out'))
    assert res['classScores']['road'] == 16 / 24 and 'mIoU' not in res
    from segnb.errors import SegnbError
    with pytest.raises(SegnbError, match='needs imgfile_prefix'): ds.evaluate(files, metric='cityscapes')
    (tmp / 'empty').mkdir()
    with pytest.raises(SegnbError, match='no predictions'): ds.evaluate(files, metric='cityscapes', imgfile_prefix=str(tmp / 'empty'))
    # the images themselves match the pattern too: two candidates for one ground truth
    with pytest.raises(SegnbError, match='several predictions'): ds.evaluate(files, metric='cityscapes', imgfile_prefix=str(tmp))
    with pytest.raises(SegnbError, match='pre_eval'): ds.evaluate(ds.pre_eval([pred], [0]), metric='cityscapes')


@pytest.fixture(autouse=True)
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture
def cli_setup(tmp_path):
    "Two 16x32 images in the Cityscapes layout, a 19-class config of the small default model, and its checkpoint."
    ids = np.full((16, 32), 7); ids[:4] = 0; ids[8:, 4:12] = 26
    inst = np.where(ids == 26, 26001, ids); train = np.vectorize({0: 255, 7: 0, 26: 13}.get)(ids)
    root = tmp_path / 'cityscapes'
    write_cityscapes(root, ['000000_000019', '000001_000019'], [(ids, inst, train)] * 2)
    cfg = Config.fromfile(DEFAULT_CONFIG)
    cfg.model.pretrained = None; cfg.model.decode_head.num_classes = 19
    cfg.data.workers_per_gpu = 0
    cfg.data.test = dict(type='CityscapesDataset', data_root=str(root), img_dir='leftImg8bit/val', ann_dir='gtFine/val',
                         pipeline=cfg.data.test.pipeline)
    cfg.dump(str(tmp_path / 'cs_config.py'))
    torch.manual_seed(0)
    model = build_segmentor(cfg.model, test_cfg=cfg.get('test_cfg'))
    torch.save(dict(state_dict=model.state_dict(), meta={}), tmp_path / 'model.pth')
    return tmp_path, [str(tmp_path / 'cs_config.py'), str(tmp_path / 'model.pth')]


def test_cli_format_only_and_eval_cityscapes(cli_setup, monkeypatch, capsys):
    tmp, args = cli_setup
    monkeypatch.chdir(tmp)
    segtest.main([*args, '--out', str(tmp / 'preds.pkl')])
    preds = torch.load(tmp / 'preds.pkl')
    prefix = tmp / 'formatted'
    segtest.main([*args, '--format-only', '--eval-options', f'imgfile_prefix={prefix}'])
    files = sorted(prefix.iterdir())
    assert [p.name for p in files] == [f'aachen_00000{i}_000019_leftImg8bit.png' for i in range(2)]
    table = np.arange(256); table[list(TRAIN_TO_ID)] = list(TRAIN_TO_ID.values())
    for p, pred in zip(files, preds):
        with Image.open(p) as im: assert im.mode == 'P' and np.array_equal(np.array(im), table[pred.numpy()])
    # --eval cityscapes: formats into a temporary folder of the working directory, scores it, removes it
    before = sorted(os.listdir(tmp))
    metrics = segtest.main([*args, '--eval', 'cityscapes', '--work-dir', str(tmp / 'work')])
    assert sorted(os.listdir(tmp)) == sorted(before + ['work'])
    ds = CityscapesDataset(pipeline=[], data_root=str(tmp / 'cityscapes'), img_dir='leftImg8bit/val', ann_dir='gtFine/val')
    expected = ds.evaluate([p.numpy() for p in preds], metric='cityscapes')
    same = lambda d: json.dumps({k: v for k, v in d.items() if k != 'perImageScores'}, sort_keys=True)
    assert same(metrics) == same(expected) and 'averageScoreInstCategories' in metrics
    (saved,) = (tmp / 'work').glob('eval_single_scale_*.json')
    assert json.loads(saved.read_text())['metric']['labels']['car'] == 26
    capsys.readouterr()
    with pytest.raises(SystemExit): segtest.main([*args, '--eval', 'cityscapes', 'mIoU'])
    assert 'give it alone' in capsys.readouterr().err
