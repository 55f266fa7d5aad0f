"""The `data` section of every mmseg 0.30 leaf config whose model segnb builds (638 configs, 40 distinct sections,
recorded by tests/fixtures/mmseg_configs/make_leaf_data.py) builds with segnb over a tiny folder in its dataset's
layout, changing only `data_root`, and gives a sample of `data.train`, `data.val` and `data.test` through the
config's own pipelines (leaf configs change crop sizes, scales and wrappers of their `_base_/datasets` file)."""
import ast, gzip, json
from pathlib import Path
import pytest
from segnb.config import Config
from test_dataset_configs import CITYSCAPES, LAYOUTS, check_data_builds, pairs, write_layout

GROUPS = json.load(gzip.open(Path(__file__).parent / 'fixtures' / 'mmseg_configs' / 'leaf_data.json.gz'))


def test_the_record_covers_every_config_segnb_builds():
    zoo = json.load(gzip.open(Path(__file__).parent / 'fixtures' / 'zoo' / 'mmseg_zoo.json.gz'))['configs']
    built = sorted(name for name, rec in zoo.items() if 'sha' in rec)
    assert sorted(c for g in GROUPS for c in g['configs']) == built and len(built) == 638


# the `*_dark` and `*_night_driving` configs train on Cityscapes and test on another set, in its own layout
TEST_SETS = {
    'DarkZurichDataset': pairs('rgb_anon/val/night/GOPR0356', 'gt/val/night/GOPR0356', ['GOPR0356_000000'],
                               '_rgb_anon.png', '_gt_labelTrainIds.png'),
    'NightDrivingDataset': pairs('leftImg8bit/test/night', 'gtCoarse_daytime_trainvaltest/test/night',
                                 ['0_frame_0001'], '_leftImg8bit.png', '_gtCoarse_labelTrainIds.png'),
}


def layout_of(group, data):
    "The group's `_base_/datasets` layout, with the files of a test set of another type added."
    layout, test_type = LAYOUTS[group['base']], data.get('test', {}).get('type')
    if test_type not in TEST_SETS: return layout
    assert layout is CITYSCAPES, group['configs']
    return {**layout, 'files': layout['files'] + TEST_SETS[test_type]}


@pytest.mark.parametrize('group', GROUPS, ids=[g['configs'][0] for g in GROUPS])
def test_leaf_data_builds_and_samples(group, tmp_path):
    data = ast.literal_eval(group['data'])
    layout = layout_of(group, data)
    check_data_builds(Config(dict(data=data)), group['base'], write_layout(tmp_path / 'data', layout), layout)
