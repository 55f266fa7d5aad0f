"""segnb.optim against values recorded from mmcv 1.7.2 (tests/fixtures/gen_optim_mmcv.py writes them; it needs mmcv)."""
import json, logging, math
from pathlib import Path
import pytest, torch
from torch import nn
from segnb.errors import SegnbError
from segnb.optim import (build_optimizer, build_lr_schedule, lr_schedule, warmup_lr, Poly, LrSchedule,
                         TORCH_OPTIMIZERS)

FIXTURES = Path(__file__).parent / 'fixtures'
LR_CASES = json.loads((FIXTURES / 'lr_mmcv.json').read_text())['cases']
PARAMWISE_CASES = json.loads((FIXTURES / 'paramwise_mmcv.json').read_text())['cases']


def case_id(c):
    cfg = c['lr_config']
    return "-".join(f"{k}={v}" for k, v in cfg.items() if k != "warmup_ratio")


@pytest.mark.parametrize('case', LR_CASES, ids=[case_id(c) for c in LR_CASES])
def test_lr_schedule_equals_mmcv(case):
    for g, base_lr in enumerate(case['base_lrs']):
        ours = lr_schedule(case['lr_config'], base_lr, case['max_iters'], case['epoch_len'])
        assert ours == pytest.approx([lrs[g] for lrs in case['lrs']], rel=1e-12, abs=1e-15)


def test_fixture_covers_every_policy_and_warmup():
    seen = {(c['lr_config']['policy'], c['lr_config'].get('warmup'), c['lr_config'].get('by_epoch')) for c in LR_CASES}
    for policy in ('poly', 'step', 'CosineAnnealing', 'fixed', 'exp', 'inv', 'CosineRestart'):
        for warmup in (None, 'linear', 'exp', 'constant'):
            for by_epoch in (False, True): assert (policy, warmup, by_epoch) in seen
    for policy in ('cyclic', 'OneCycle'):
        for warmup in (None, 'linear', 'exp', 'constant'):
            assert any(c['lr_config']['policy'] == policy and c['lr_config'].get('warmup') == warmup for c in LR_CASES)


def test_lr_schedule_step_by_epoch_changes_only_at_epoch_boundaries():
    lrs = lr_schedule(dict(policy='step', step=2, gamma=0.5, by_epoch=True), 1., 40, epoch_len=5)
    changes = [i for i in range(1, 40) if lrs[i] != lrs[i - 1]]
    assert changes == [10, 20, 30]


def test_warmup_scales_the_regular_lr():
    sched = LrSchedule(Poly(power=1.), by_epoch=False, warmup='linear', warmup_iters=10, warmup_ratio=0.1)
    for i in range(10):
        regular = Poly(power=1.).get_lr(i, 100, 0.01)
        assert math.isclose(sched.lr(0.01, i, 100), warmup_lr(i, regular, 'linear', 10, 0.1))
        assert sched.lr(0.01, i, 100) <= regular
    assert sched.lr(0.01, 10, 100) == Poly(power=1.).get_lr(10, 100, 0.01)


def param_groups_by_name(model, opt):
    names = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
    return [dict(params=[names[id(p)] for p in g['params']], lr=g['lr'], weight_decay=g.get('weight_decay'))
            for g in opt.param_groups]


class Net(nn.Module):
    "The model of gen_optim_mmcv.py."
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, groups=4), nn.GroupNorm(2, 4))
        self.decode_head = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3))
        self.auxiliary_head = nn.Linear(4, 3, bias=False)
        self.frozen = nn.Conv2d(3, 3, 1)
        for p in self.frozen.parameters(): p.requires_grad = False
        shared = nn.Linear(2, 2)
        self.neck_a, self.neck_b = nn.Sequential(shared), nn.Sequential(shared)


@pytest.mark.parametrize('case', PARAMWISE_CASES, ids=[str(i) for i in range(len(PARAMWISE_CASES))])
def test_paramwise_equals_mmcv(case):
    torch.manual_seed(0)
    model = Net()
    opt = build_optimizer(model, case['cfg'])
    assert type(opt).__name__ == case['optimizer']
    got = param_groups_by_name(model, opt)
    assert [g['params'] for g in got] == [g['params'] for g in case['groups']]
    assert [g['lr'] for g in got] == pytest.approx([g['lr'] for g in case['groups']], rel=1e-12)
    assert [g['weight_decay'] for g in got] == pytest.approx([g['weight_decay'] for g in case['groups']], rel=1e-12)


def test_optimizer_trains_with_paramwise_groups():
    torch.manual_seed(0)
    model = Net()
    opt = build_optimizer(model, dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4,
                                      paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10.)}, bypass_duplicate=True)))
    x = torch.randn(2, 4)
    before = model.decode_head[0].weight.detach().clone()
    model.decode_head(x).sum().backward()
    opt.step()
    assert not torch.equal(before, model.decode_head[0].weight)


@pytest.mark.parametrize('name', ['SGD', 'Adam', 'AdamW', 'RMSprop', 'Adagrad', 'Adadelta', 'Adamax', 'NAdam', 'RAdam'])
def test_every_torch_optimizer_by_name(name):
    assert name in TORCH_OPTIMIZERS
    assert type(build_optimizer(nn.Linear(2, 2), dict(type=name, lr=0.01))).__name__ == name


@pytest.mark.parametrize('cfg, contains', [
    (dict(type='Adamm', lr=0.1), 'Adam'),
    (dict(type='SGD', lr=0.1, betas=(0.9, 0.99)), 'betas'),
    (dict(type='SGD', lr=-1.), 'learning rate'),
    (dict(type='SGD', lr=0.1, paramwise_cfg=dict(bias_decay_mult=0.)), 'weight_decay'),
    (dict(type='SGD', lr=0.1, paramwise_cfg=dict(custom_key={'x': {}})), 'custom_key'),
    ([('type', 'SGD')], 'dict'),
])
def test_optimizer_errors_are_one_line(cfg, contains):
    with pytest.raises(SegnbError) as e: build_optimizer(nn.Linear(2, 2), cfg)
    assert contains in str(e.value) and '\n' not in str(e.value)


@pytest.mark.parametrize('cfg, contains', [
    (dict(policy='Polynomial'), 'Polynomial'),
    (dict(policy='step'), 'step'),
    (dict(policy='poly', warmup='linear', warmup_iters=0), 'warmup_iters'),
    (dict(policy='CosineAnnealing', min_lr=0., min_lr_ratio=0.1), 'min_lr'),
    (dict(power=1.), 'policy'),
    (dict(policy='OneCycle', max_lr=0.1, by_epoch=True), 'by_epoch'),
    (dict(policy='cyclic', anneal_strategy='cosine'), 'anneal_strategy'),
])
def test_lr_config_errors_are_one_line(cfg, contains):
    with pytest.raises(SegnbError) as e: build_lr_schedule(cfg)
    assert contains in str(e.value) and '\n' not in str(e.value)


def test_bypass_duplicate_logs_a_warning(caplog):
    model = Net()
    logger = logging.getLogger('segnb')  # segnb's logger does not propagate once a run configured it: listen on it
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level('WARNING', logger='segnb'):
            build_optimizer(model, dict(type='SGD', lr=0.1, paramwise_cfg=dict(bypass_duplicate=True)))
    finally: logger.removeHandler(caplog.handler)
    assert any('neck_b.0 is duplicate' in r.getMessage() for r in caplog.records)
