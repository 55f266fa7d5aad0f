"""BEiT and MAE against mmseg 0.30: every config of configs/beit/ and configs/mae/ builds with mmseg's state_dict
names and shapes, and one model per family gives mmseg's logits for the same deterministic weights (the records of
tests/fixtures/zoo)."""
import sys
from pathlib import Path
import pytest

sys.path.insert(0, str(Path(__file__).parent / 'fixtures' / 'zoo'))
from zoo_check import load_records, same_shapes, logits_difference
import segnb.models.backbones.beit, segnb.models.backbones.mae  # noqa: F401  (registers BEiT, MAE, Feature2Pyramid)

FAMILIES = ('beit', 'mae')
RECORDS = load_records()
CONFIGS = sorted(k for k, r in RECORDS['configs'].items() if 'sha' in r and r['family'] in FAMILIES)

def test_all_configs_recorded(): assert len(CONFIGS) == 6

@pytest.mark.parametrize('config', CONFIGS)
def test_builds_with_mmseg_names_and_shapes(config):
    ok, why = same_shapes(RECORDS['configs'][config])
    assert ok, why

@pytest.mark.parametrize('family', FAMILIES)
def test_logits_match_mmseg(family):
    rec = RECORDS['logits'][family]
    assert logits_difference(rec, RECORDS['configs'][rec['config']]['model']) <= 1e-4
