"The momentum hooks against mmcv 1.7.2's own (tests/fixtures/momentum_mmcv.json, made by gen_momentum_mmcv.py)."
import json
from pathlib import Path
from types import SimpleNamespace
import pytest
import torch
from segnb.hooks import build_hook, momentum_hook_type

CASES = json.loads((Path(__file__).parent / 'fixtures' / 'momentum_mmcv.json').read_text())['cases']


def optimizer_for(kind, momenta):
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    if kind == 'SGD':
        return torch.optim.SGD([dict(params=a.parameters(), momentum=momenta[0]),
                                dict(params=b.parameters(), momentum=momenta[1])], lr=0.01)
    return torch.optim.Adam([dict(params=a.parameters(), betas=(momenta[0], 0.999)),
                             dict(params=b.parameters(), betas=(momenta[1], 0.999))], lr=0.01)


def our_momenta(case):
    "What segnb's hook sets before each iteration, driven the way the runners call it."
    cfg = dict(case['momentum_config'])
    cfg['type'] = momentum_hook_type(cfg.pop('policy'))
    hook, el, n = build_hook(cfg), case['epoch_len'], case['max_iters']
    opt = optimizer_for(case['optimizer'], case['base_momenta'])
    r = SimpleNamespace(optimizer=opt, iter=0, epoch=0, max_iters=n, max_epochs=n // el if el else None,
                        data_loader=range(el or n))
    hook.before_run(r)
    out = []
    for it in range(n):
        r.iter, r.epoch = it, it // el if el else 0
        if el and it % el == 0: hook.before_train_epoch(r)
        hook.before_train_iter(r)
        out.append([g['momentum'] if 'momentum' in g else g['betas'][0] for g in opt.param_groups])
    return out


@pytest.mark.parametrize('case', CASES, ids=lambda c: f"{c['momentum_config']}-{c['optimizer']}-{c['epoch_len']}")
def test_momentum_matches_mmcv(case):
    ours = our_momenta(case)
    assert len(ours) == len(case['momenta'])
    for got, want in zip(ours, case['momenta']): assert got == pytest.approx(want, abs=1e-12)


def test_fixture_covers_every_policy_and_warmup():
    policies = {c['momentum_config']['policy'] for c in CASES}
    assert policies == {'step', 'CosineAnnealing', 'LinearAnnealing', 'cyclic', 'OneCycle'}
    assert {c['momentum_config'].get('warmup') for c in CASES} == {None, 'constant', 'linear', 'exp'}
