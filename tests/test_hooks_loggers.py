"WandbLoggerHook (offline) and MlflowLoggerHook (a local file store) in a short training run; the one-line error without them."
import os, sys
import pytest
import torch
from segnb.errors import SegnbError
from segnb.hooks import MlflowLoggerHook, WandbLoggerHook
from segnb.runner import IterBasedRunner


class Toy(torch.nn.Module):
    def __init__(self):
        super().__init__(); self.w = torch.nn.Linear(2, 1)
    def train_step(self, batch, optimizer):
        loss = self.w(batch).pow(2).mean()
        return dict(loss=loss, log_vars={'loss': loss.detach()}, num_samples=len(batch))


def train(work_dir, hook, iters=6):
    model = Toy()
    runner = IterBasedRunner(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), work_dir=str(work_dir), max_iters=iters)
    runner.register_training_hooks(dict(policy='poly', power=0.9), dict(), None, dict(interval=2, hooks=[dict(type='TextLoggerHook')]))
    runner.register_hook(hook, 'VERY_LOW')
    runner.run([torch.utils.data.DataLoader(torch.randn(8, 2), batch_size=2)], [('train', 1)])
    return runner


def test_wandb_offline(tmp_path, monkeypatch):
    pytest.importorskip('wandb')
    monkeypatch.setenv('WANDB_MODE', 'offline'); monkeypatch.setenv('WANDB_DIR', str(tmp_path)); monkeypatch.setenv('WANDB_SILENT', 'true')
    hook = WandbLoggerHook(init_kwargs=dict(project='segnb-test'), interval=2, define_metric_cfg={'train/loss': 'min'})
    logged, start = [], hook.before_run
    def before_run(runner):     # wandb.init binds wandb.log to the new run: record what the hook sends after it
        start(runner)
        real_log = hook.wandb.log
        monkeypatch.setattr(hook.wandb, 'log', lambda tags, **kw: (logged.append((tags, kw)), real_log(tags, **kw)))
    hook.before_run = before_run
    train(tmp_path / 'wd', hook)
    assert [kw['step'] for _, kw in logged] == [2, 4, 6]
    assert set(logged[0][0]) == {'train/loss', 'learning_rate', 'momentum'}
    runs = list((tmp_path / 'wandb').glob('offline-run-*'))
    assert len(runs) == 1 and list(runs[0].glob('*.wandb'))


def test_mlflow_file_store(tmp_path, monkeypatch):
    mlflow = pytest.importorskip('mlflow')
    monkeypatch.setenv('MLFLOW_TRACKING_URI', (tmp_path / 'mlruns').as_uri()); monkeypatch.setenv('MLFLOW_ALLOW_FILE_STORE', 'true')
    train(tmp_path / 'wd', MlflowLoggerHook(exp_name='segnb-test', tags=dict(model='toy'), params=dict(lr=0.1), interval=2))
    exp = mlflow.get_experiment_by_name('segnb-test')
    (run,) = mlflow.search_runs([exp.experiment_id], output_format='list')
    history = mlflow.tracking.MlflowClient().get_metric_history(run.info.run_id, 'train/loss')
    assert [m.step for m in history] == [2, 4, 6]
    assert run.data.tags['model'] == 'toy' and run.data.params['lr'] == '0.1'
    assert mlflow.active_run() is None


@pytest.mark.parametrize('hook, module', [(WandbLoggerHook, 'wandb'), (MlflowLoggerHook, 'mlflow')])
def test_missing_package_is_one_line(hook, module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(SegnbError, match=rf"pip install 'segnb\[loggers\]' \(or pip install {module}\)"): hook()
