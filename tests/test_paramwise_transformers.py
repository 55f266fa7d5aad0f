"""The AdamW + `paramwise_cfg` settings of mmseg 0.30's transformer configs give, parameter by parameter, the learning
rate and weight decay that mmcv 1.7's DefaultOptimizerConstructor gives (recorded by
tests/fixtures/paramwise/make_paramwise_fixtures.py): `custom_keys` such as `absolute_pos_embed`,
`relative_position_bias_table`, `pos_block`, `norm` and `head` with `decay_mult` / `lr_mult`, and `norm_decay_mult`."""
import json, sys
from pathlib import Path
import pytest
import segnb.models  # noqa: F401  (every model a config may name)
from segnb.optim import build_optimizer

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / 'fixtures' / 'zoo'))
from zoo_check import build, load_records

CASES = json.loads((HERE / 'fixtures' / 'paramwise' / 'mmcv_paramwise_transformers.json').read_text())['cases']
MODELS = load_records()['configs']

@pytest.mark.parametrize('config', sorted(CASES))
def test_param_groups_match_mmcv(config):
    case = CASES[config]
    model = build(MODELS[config]['model'])
    names = {id(p): n for n, p in model.named_parameters()}
    optimizer = build_optimizer(model, case['optimizer'])
    ours = {names[id(p)]: [g['lr'], g['weight_decay']] for g in optimizer.param_groups for p in g['params']}
    assert sorted(ours) == sorted(case['params'])
    wrong = {n: (ours[n], v) for n, v in case['params'].items() if ours[n] != pytest.approx(v, rel=1e-12)}
    assert not wrong, f'{len(wrong)} parameters differ, e.g. {next(iter(wrong.items()))}'
    assert len({tuple(v) for v in ours.values()}) > 1   # the config does set parameters apart
