"""segnb's Config gives the dicts mmcv 1.7.2 gives for the mmseg 0.x-style configs in tests/fixtures/configs.

The expected JSON files were written by tests/fixtures/make_expected_configs.py, which needs mmcv and is not run here."""
import json
from pathlib import Path
import pytest
from segnb.config import Config, FORMATS

FIXTURES = Path(__file__).parent / 'fixtures' / 'configs'
LEAVES = sorted(p for p in FIXTURES.rglob('*') if p.suffix in FORMATS and not {'_base_', 'expected'} & set(p.parts))

def encode(x):
    "The fixture generator's JSON form: tuples tagged, the fixtures path replaced by a token."
    if isinstance(x, dict): return {str(k): encode(v) for k, v in x.items()}
    if isinstance(x, tuple): return {'__tuple__': [encode(v) for v in x]}
    if isinstance(x, list): return [encode(v) for v in x]
    return x.replace(str(FIXTURES.resolve()), '<FIXTURES>') if isinstance(x, str) else x

def decode(x):
    "Undo `encode` (for option values)."
    if isinstance(x, dict):
        return tuple(decode(v) for v in x['__tuple__']) if '__tuple__' in x else {k: decode(v) for k, v in x.items()}
    return [decode(v) for v in x] if isinstance(x, list) else x

def test_every_leaf_has_an_expected_dict():
    assert len(LEAVES) >= 10
    assert {p.name + '.json' for p in LEAVES} <= {p.name for p in (FIXTURES / 'expected').iterdir()}

@pytest.mark.parametrize('leaf', LEAVES, ids=lambda p: p.name)
def test_fromfile_matches_mmcv(leaf):
    expected = json.loads((FIXTURES / 'expected' / f'{leaf.name}.json').read_text())
    assert encode(Config.fromfile(leaf.resolve()).to_dict()) == expected

def test_merge_from_dict_matches_mmcv():
    for case in json.loads((FIXTURES / 'expected' / 'merge_from_dict.json').read_text()):
        cfg = Config.fromfile((FIXTURES / case['leaf']).resolve())
        cfg.merge_from_dict(decode(case['options']))
        assert encode(cfg.to_dict()) == case['result'], case['options']
