"""segnb's layer-decay optimizer constructors give mmseg 0.30's parameter groups: the same group names in the same
order, the same parameters (by name, in order), learning rates and weight decays, for the optimizers of the BEiT,
MAE and ConvNeXt configs (tests/fixtures/layer_decay/make_layer_decay_fixtures.py records them)."""
import json, warnings
from pathlib import Path
import pytest, torch

import segnb.layer_decay  # noqa: F401  (registers the constructors)
import segnb.models.backbones.beit, segnb.models.backbones.mae, segnb.models.backbones.convnext  # noqa: F401
from segnb.models import build_segmentor
from segnb.optim import build_optimizer

CASES = json.loads((Path(__file__).parent / 'fixtures' / 'layer_decay' / 'mmseg_layer_decay.json').read_text())['cases']

def segnb_groups(case):
    model = build_segmentor(case['model'])
    names = {id(p): n for n, p in model.named_parameters()}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        opt = build_optimizer(model, case['optimizer'])
    return [dict(group_name=g['group_name'], lr=g['lr'], weight_decay=g['weight_decay'],
                 param_names=[names[id(p)] for p in g['params']]) for g in opt.param_groups]

def test_cases_recorded(): assert sorted(CASES) == ['beit', 'convnext_layer_wise', 'convnext_stage_wise', 'mae']

@pytest.mark.parametrize('case', sorted(CASES))
def test_groups_match_mmseg(case):
    ours, ref = segnb_groups(CASES[case]), CASES[case]['groups']
    assert [g['group_name'] for g in ours] == [g['group_name'] for g in ref]
    for a, b in zip(ours, ref):
        assert a['param_names'] == b['param_names'], a['group_name']
        assert a['lr'] == pytest.approx(b['lr'], rel=1e-12, abs=0), a['group_name']
        assert a['weight_decay'] == b['weight_decay'], a['group_name']
    params = {n: (g['lr'], g['weight_decay']) for g in ours for n in g['param_names']}
    assert params.keys() == CASES[case]['params'].keys()
    for n, (lr, wd) in CASES[case]['params'].items():
        assert params[n][0] == pytest.approx(lr, rel=1e-12) and params[n][1] == wd, n
