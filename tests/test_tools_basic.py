"""`python -m segnb.tools.{print_config,get_flops,benchmark,publish_model}` as commands, each in a process of its own
(the four run at the same time), on the default config and a checkpoint of an untrained model; user errors are one line."""
import contextlib, hashlib, io, json, os, re, sys
from concurrent.futures import ThreadPoolExecutor
import pytest
import torch
from test_train_e2e import run
from segnb.config import Config
from segnb.models import build_segmentor
from segnb.train import DEFAULT_CONFIG
from segnb.tools import benchmark, get_flops, print_config, publish_model


def shapes_options(root):
    "A 3-image test split generated under `root`, loaded in the main process."
    return ['data.workers_per_gpu=0'] + [f'data.test.{k}' for k in (f'data_root={root}', 'num_train=1', 'num_val=3')]


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    "A training-style checkpoint (meta, weights, optimizer) of an untrained model; the four commands' results."
    base = tmp_path_factory.mktemp('tools')
    cfg = Config.fromfile(DEFAULT_CONFIG); cfg.model.pretrained = None
    torch.manual_seed(0)
    model = build_segmentor(cfg.model, test_cfg=cfg.get('test_cfg'))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    torch.save(dict(meta=dict(iter=0, CLASSES=['background', 'circle', 'square', 'triangle']),
                    state_dict=model.state_dict(), optimizer=opt.state_dict()), base / 'model.pth')
    ckpt = base / 'model.pth'
    commands = dict(
        print_config=[DEFAULT_CONFIG, '--cfg-options', 'model.decode_head.num_classes=7'],
        get_flops=[DEFAULT_CONFIG],
        benchmark=[DEFAULT_CONFIG, ckpt, '--device', 'cpu', '--work-dir', base / 'benchmark' / 'work', '--total-images', 5,
                   '--num-warmup', 1, '--log-interval', 2, '--repeat-times', 2, '--cfg-options', *shapes_options(base / 'shapes')],
        publish_model=[ckpt, base / 'publish_model' / 'depth.pth'])
    for name in commands: (base / name).mkdir(exist_ok=True)
    with ThreadPoolExecutor(len(commands)) as pool:
        futures = {name: pool.submit(run, [sys.executable, '-m', f'segnb.tools.{name}', *map(str, argv)], cwd=base / name)
                   for name, argv in commands.items()}
    return base, model, {name: f.result() for name, f in futures.items()}


def ok(runs, name):
    "The output of a command that must have succeeded."
    r = runs[2][name]
    assert r['rc'] == 0 and 'Traceback' not in r['out'], r['out'][-2000:]
    return r['out']


def one_line_error(main, argv):
    "(exit status, the one line on stderr) of an entry point that must fail."
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as e: main(list(map(str, argv)))
    log_line = re.compile(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ - segnb - ')        # INFO lines before the error
    lines = [l for l in err.getvalue().strip().splitlines() if not log_line.match(l)]
    assert len(lines) == 1, lines
    return e.value.code, lines[0]


def test_print_config(runs):
    out = ok(runs, 'print_config')
    assert out.startswith('Config:\n')
    cfg = Config.fromfile(DEFAULT_CONFIG); cfg.merge_from_dict({'model.decode_head.num_classes': 7})
    assert Config.fromstring(out[len('Config:\n'):], '.py').to_dict() == cfg.to_dict()
    assert os.listdir(runs[0] / 'print_config') == []                  # mmseg's example.py is not written
    assert 'config file not found' in one_line_error(print_config.main, [runs[0] / 'nope.py'])[1]


def test_get_flops(runs):
    lines, model = ok(runs, 'get_flops').splitlines(), runs[1]
    assert lines[:2] == ['=' * 30, 'Input shape: (3, 2048, 1024)'] and lines[4] == '=' * 30
    flops = get_flops.count_flops(model, (3, 2048, 1024))[0]
    assert lines[2] == f'Flops: {round(flops / 1e9, 2)} GFLOPs' and flops > 1e9
    assert lines[3] == f'Params: {get_flops.params_to_string(get_flops.count_params(model))}'
    assert one_line_error(get_flops.main, [DEFAULT_CONFIG, '--shape', 1, 2, 3])[1].endswith('give one size or two (H W), positive')


def test_benchmark(runs):
    base, out = runs[0], ok(runs, 'benchmark')
    lines = [l.split(',')[0].split(':')[0] for l in out.splitlines() if l.startswith(('Run', 'Done', 'Overall'))]
    one_run = ['Done image [2  / 5]', 'Done image [4  / 5]', 'Overall fps']
    assert lines == ['Run 1', *one_run, 'Run 2', *one_run]
    (written,) = os.listdir(base / 'benchmark' / 'work')
    summary = json.loads((base / 'benchmark' / 'work' / written).read_text())
    assert written.startswith('fps_') and written.endswith('.json')
    assert list(summary) == ['config', 'unit', 'overall_fps_1', 'overall_fps_2', 'average_fps', 'fps_variance']
    assert summary['unit'] == 'img / s' and summary['average_fps'] > 0
    assert f"Average fps of 2 evaluations: {summary['average_fps']}" in out
    code, line = one_line_error(benchmark.main, [DEFAULT_CONFIG, base / 'model.pth', '--total-images', 5, '--num-warmup', 5])
    assert code == 2 and 'no image would be timed' in line
    argv = [DEFAULT_CONFIG, base / 'nope.pth', '--work-dir', base / 'w2', '--cfg-options', *shapes_options(base / 'shapes')]
    threads = torch.get_num_threads()
    try: code, line = one_line_error(benchmark.main, argv)
    finally: torch.set_num_threads(threads)
    assert code == 1 and 'checkpoint not found' in line


def test_publish_model(runs):
    base, model = runs[:2]
    out = ok(runs, 'publish_model')
    (name,) = os.listdir(base / 'publish_model')
    sha = hashlib.sha256((base / 'publish_model' / name).read_bytes()).hexdigest()
    assert name == f'depth-{sha[:8]}.pth' and out.strip() == str(base / 'publish_model' / name)   # not mmseg's 'de-...'
    pub = torch.load(base / 'publish_model' / name, weights_only=True)
    assert list(pub) == ['meta', 'state_dict']
    assert all(torch.equal(pub['state_dict'][k], v) for k, v in model.state_dict().items())
    code, line = one_line_error(publish_model.main, [base / 'model.pth', base / 'model.pth'])
    assert code == 1 and 'is the input' in line and (base / 'model.pth').is_file()
