"""`python -m segnb.train` / `segnb.test`, alone and under torchrun (gloo, CPU), end to end on a tiny Shapes set.

Four training runs share a data root: one process; torchrun --standalone with --launcher pytorch; the literal
`torchrun --nproc_per_node 2 -m segnb.train` (no --standalone, no --launcher) with the same seed. A hook loaded
through `custom_imports` (tests/e2e_helpers.py) records, per rank, the images of every batch and every file written.
"""
import json, os, re, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
import e2e_helpers
from segnb.data import make_shapes
from segnb.dist import launch_local
from segnb.train import DEFAULT_CONFIG

TESTS = Path(__file__).parent
ITERS, NUM_TRAIN, NUM_VAL, BATCH = 8, 16, 5, 2   # 16 images / (2 ranks x 2) = 4 iterations per epoch: 2 epochs
LAUNCH_KEYS = ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'GROUP_RANK',
               'TORCHELASTIC_RUN_ID', 'TORCHELASTIC_RESTART_COUNT')


def cfg_options(data_root):
    "A shortened schedule on the tiny Shapes set, for every split."
    opts = [f'runner.max_iters={ITERS}', f'checkpoint_config.interval={ITERS}', f'evaluation.interval={ITERS}',
            'log_config.interval=2', f'data.samples_per_gpu={BATCH}', 'data.workers_per_gpu=0']
    for split in ('train', 'val', 'test'):
        opts += [f'data.{split}.data_root={data_root}', f'data.{split}.num_train={NUM_TRAIN}',
                 f'data.{split}.num_val={NUM_VAL}']
    return ['--cfg-options', *opts]


def env():
    "This environment without any launcher's variables, one thread per process, the hook module importable."
    e = {k: v for k, v in os.environ.items() if k not in LAUNCH_KEYS}
    path = os.pathsep.join(p for p in (str(TESTS), e.get('PYTHONPATH')) if p)
    return {**e, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': path}


def torchrun():
    exe = Path(sys.executable).with_name('torchrun')
    return [str(exe)] if exe.exists() else [sys.executable, '-m', 'torch.distributed.run']


def group_members(pgid):
    "Pids of live processes in process group `pgid`."
    pids = []
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try: fields = stat.read_text().rsplit(')', 1)[1].split()
        except (OSError, IndexError): continue
        if int(fields[2]) == pgid and fields[0] != 'Z': pids.append(int(stat.parent.name))
    return pids


def run(cmd, cwd, timeout=240):
    "Run `cmd` in its own process group; its output, exit code, seconds, and the group's leftover processes."
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try: out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9); out, _ = p.communicate()
        pytest.fail(f'{cmd} timed out:\n{out[-3000:]}')
    time.sleep(0.2)
    return dict(out=out, rc=p.returncode, secs=time.perf_counter() - t0, leftover=group_members(p.pid))


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    "The data root, made once (as every run would make it), and the per-run folders."
    base = tmp_path_factory.mktemp('e2e')
    make_shapes(str(base / 'shapes'), num_train=NUM_TRAIN, num_val=NUM_VAL, progress=False)
    return base


def instrumented_config(root, name):
    "The default config plus the recording hook, writing into `root/name/rec`."
    rec = root / name / 'rec'
    rec.mkdir(parents=True)
    cfg = root / name / 'e2e_cfg.py'
    cfg.write_text(f"_base_ = [{DEFAULT_CONFIG!r}]\n"
                   "custom_imports = dict(imports=['e2e_helpers'], allow_failed_imports=False)\n"
                   f"custom_hooks = [dict(type='ProgressBarHook'), dict(type='RecordSamplesHook', out_dir={str(rec)!r})]\n")
    return cfg, rec


def train_run(root, name, launch, nprocs):
    "Train with `launch` (the command before `-m segnb.train`) and the recording hook; what it left behind."
    cfg, rec = instrumented_config(root, name)
    wd = root / name / 'work_dir'
    res = run([*launch, '-m', 'segnb.train', str(cfg), '--work-dir', str(wd), '--seed', '0', *cfg_options(root / 'shapes')]
              + (['--launcher', 'pytorch'] if '--standalone' in launch else []), cwd=root / name)
    assert res['rc'] == 0, res['out'][-4000:]
    res.update(wd=wd, batches=[[json.loads(l) for l in (rec / f'rank{r}.jsonl').read_text().splitlines()]
                               for r in range(nprocs)],
               ends=[json.loads(p.read_text()) for p in sorted(rec.glob('rank*_end.json'))])
    print(f'{name}: {res["secs"]:.1f} s')
    return res


@pytest.fixture(scope='module')
def single(root):
    "`python -m segnb.train` in one process."
    return train_run(root, 'single', [sys.executable], 1)


@pytest.fixture(scope='module')
def ddp(root):
    "`torchrun --standalone --nproc_per_node 2 -m segnb.train ... --launcher pytorch`."
    return train_run(root, 'ddp', [*torchrun(), '--standalone', '--nproc_per_node', '2'], 2)


@pytest.fixture(scope='module')
def ddp_literal(root):
    "`torchrun --nproc_per_node 2 -m segnb.train ...` as typed: no --standalone, launcher detected from the environment."
    return train_run(root, 'ddp_literal', [*torchrun(), '--nproc_per_node', '2'], 2)


def log_files(wd):
    logs, jsons = sorted(wd.glob('*.log')), sorted(wd.glob('*.log.json'))
    assert len(logs) == 1 and len(jsons) == 1, sorted(p.name for p in wd.iterdir())
    return logs[0], [json.loads(l) for l in jsons[0].read_text().splitlines()]


def check_work_dir(res):
    "The files a run leaves: one log pair named by its timestamp, the config, the checkpoints; the records inside."
    wd = res['wd']
    log, records = log_files(wd)
    assert re.fullmatch(r'\d{8}_\d{6}\.log', log.name) and (wd / (log.name + '.json')).exists()
    names = {p.name for p in wd.iterdir()}
    assert names == {log.name, log.name + '.json', 'e2e_cfg.py', f'iter_{ITERS}.pth', 'latest.pth',
                     f'best_mIoU_iter_{ITERS}.pth'}, names
    assert os.readlink(wd / 'latest.pth') == f'iter_{ITERS}.pth'
    assert 'RecordSamplesHook' in (wd / 'e2e_cfg.py').read_text()
    train = [r for r in records if r.get('mode') == 'train']
    val = [r for r in records if r.get('mode') == 'val']
    assert [r['iter'] for r in train] == list(range(2, ITERS + 1, 2))
    for r in train:
        assert {'mode', 'epoch', 'iter', 'lr', 'loss', 'time'} <= set(r) and np.isfinite(r['loss']) and r['lr'] > 0
    assert len(val) == 1 and val[0]['iter'] == ITERS and 0 <= val[0]['mIoU'] <= 1 and 0 <= val[0]['aAcc'] <= 1
    assert records[-1]['mode'] == 'train' and records[-1]['iter'] == ITERS   # the log ends with the last iteration
    text = log.read_text()
    for i in range(2, ITERS + 1, 2): assert text.count(f'Iter [{i}/{ITERS}]') == 1, i
    stamped = [l for l in text.splitlines() if ' - segnb - ' in l]
    assert len(stamped) == len(set(stamped)), 'duplicate log lines'
    assert f'Iter [{ITERS}/{ITERS}]' in stamped[-1], stamped[-1]
    return val[0]


def check_checkpoint(path, seed=0):
    ckpt = torch.load(path, weights_only=True)
    meta = ckpt['meta']
    assert meta['CLASSES'] == ['background', 'circle', 'square', 'triangle'] and len(meta['PALETTE']) == 4
    assert meta['seed'] == seed and 'PyTorch' in meta['env_info'] and meta['segnb_version'].startswith('0.')
    assert 'RecordSamplesHook' in meta['config'] and meta['iter'] == ITERS
    assert not any(k.startswith('module.') for k in ckpt['state_dict'])
    assert 'optimizer' in ckpt
    return ckpt


def test_single_process_run(single):
    assert 'Traceback' not in single['out'] and single['leftover'] == []
    check_work_dir(single)
    check_checkpoint(single['wd'] / f'iter_{ITERS}.pth')
    check_checkpoint(single['wd'] / f'best_mIoU_iter_{ITERS}.pth')
    assert [b['world_size'] for b in single['batches'][0]] == [1] * ITERS
    assert 'Distributed training: False' in single['out'] and 'total batch size' not in single['out']


def epochs(batches):
    "{epoch: [file, ...] in the order trained} for one rank."
    out = {}
    for b in batches: out.setdefault(b['epoch'], []).extend(b['files'])
    return out


@pytest.mark.parametrize('name', ['ddp', 'ddp_literal'])
def test_ddp_ranks_share_the_data(name, request):
    res = request.getfixturevalue(name)
    ranks = [epochs(b) for b in res['batches']]
    assert all(b['world_size'] == 2 for rb in res['batches'] for b in rb)
    assert {b['pid'] for b in res['batches'][0]}.isdisjoint({b['pid'] for b in res['batches'][1]})
    per_epoch = NUM_TRAIN // 2
    for e in (0, 1):
        r0, r1 = ranks[0][e], ranks[1][e]
        assert len(r0) == len(r1) == per_epoch
        assert set(r0).isdisjoint(r1), (e, r0, r1)                               # ranks see disjoint samples
        assert sorted(r0 + r1) == [f'train_{i:05d}.png' for i in range(NUM_TRAIN)]   # together: the whole set
        assert ranks[0][0] != ranks[0][1]                                         # set_epoch: a new order


def test_ddp_same_seed_same_order(ddp, ddp_literal):
    "Two runs with the same seed (one with --launcher pytorch, one detecting torchrun) train on the same samples."
    assert [epochs(b) for b in ddp['batches']] == [epochs(b) for b in ddp_literal['batches']]


@pytest.mark.parametrize('name', ['ddp', 'ddp_literal'])
def test_ddp_only_rank0_writes(name, request):
    res = request.getfixturevalue(name)
    assert res['rc'] == 0 and res['leftover'] == [], res['leftover']            # clean end: no process left
    assert 'Traceback' not in res['out']
    end0, end1 = res['ends']
    assert end0['iter'] == end1['iter'] == ITERS
    assert end1['writes'] == [] and end1['log_files'] == []                       # rank 1 wrote nothing
    assert len(end0['log_files']) == 1 and Path(end0['log_files'][0]).parent == res['wd']
    written = {Path(p).name for p in end0['writes']}
    assert {f'iter_{ITERS}.pth', 'latest.pth', f'best_mIoU_iter_{ITERS}.pth'} <= written, written
    check_work_dir(res)
    check_checkpoint(res['wd'] / f'iter_{ITERS}.pth')
    assert res['out'].count(f'Iter [{ITERS}/{ITERS}]') == 1                       # one console, not two
    assert 'Distributed training: True' in res['out']
    assert f'total batch size {2 * BATCH}' in res['out'] and f'total batch size {2 * BATCH}' in log_files(res['wd'])[0].read_text()


def test_validation_counts_every_image_once():
    "multi_gpu_test over 5 images on 2 processes: the summed areas count each image exactly once (no padding)."
    assert e2e_helpers.count_eval_images(NUM_VAL) == [1.0] * NUM_VAL
    for counts in launch_local(e2e_helpers.count_eval_images, nprocs=2, args=(NUM_VAL,)): assert counts == [1.0] * NUM_VAL


def background_fractions(root):
    return [(np.array(Image.open(root / 'shapes' / 'ann_dir' / 'val' / f'val_{i:05d}.png')) == 0).mean()
            for i in range(NUM_VAL)]


def test_segnb_test_single_and_torchrun(root, ddp):
    "The checkpoint of the DDP run: the same metrics from `segnb.test` on 1 and 2 processes, and from training."
    ckpt = ddp['wd'] / f'iter_{ITERS}.pth'
    results = {}
    for name, launch in (('one', [sys.executable]), ('two', [*torchrun(), '--standalone', '--nproc_per_node', '2'])):
        show, out = root / 'test' / name / 'show', root / 'test' / name / 'eval'
        res = run([*launch, '-m', 'segnb.test', DEFAULT_CONFIG, str(ckpt), '--eval', 'mIoU', '--show-dir', str(show),
                   '--work-dir', str(out), *cfg_options(root / 'shapes')], cwd=root)
        assert res['rc'] == 0 and res['leftover'] == [] and 'Traceback' not in res['out'], res['out'][-4000:]
        assert res['out'].count('per class results') == 1
        for cls in ('background', 'circle', 'square', 'triangle'): assert re.search(rf'\|\s+{cls}\s+\|', res['out'])
        painted = sorted(p.name for p in show.iterdir())
        assert painted == [f'val_{i:05d}.png' for i in range(NUM_VAL)]
        assert Image.open(show / painted[0]).size == (128, 128)
        (js,) = out.glob('eval_*.json')
        results[name] = json.loads(js.read_text())['metric']
        print(f'segnb.test {name}: {res["secs"]:.1f} s')
    assert results['one'] == results['two']
    val = check_work_dir(ddp)    # validation during the 2-process run (DistEvalHook, pre_eval areas summed)
    assert {k: round(v, 4) for k, v in val.items() if k in results['one']} == \
           {k: round(v, 4) for k, v in results['one'].items()}
    # the check above can fail: counting the padded image (val_00000) twice would change aAcc at this precision
    bg = background_fractions(root)
    assert abs(np.mean(bg) - (sum(bg) + bg[0]) / (NUM_VAL + 1)) > 1e-3


BAD_MODEL = "_base_ = [{base!r}]\nmodel = dict(type='NoSuchSegmentor')\n"


@pytest.mark.parametrize('case', ['missing_config', 'unknown_model', 'missing_data_root', 'gpus_without_torchrun'])
def test_bad_input(case, tmp_path):
    "A clear one-line error, a non-zero exit, no traceback."
    voc = str(Path(DEFAULT_CONFIG).parents[1] / 'deeplabv3' / 'deeplabv3_r50-d8_512x512_20k_voc12.py')
    bad_model = tmp_path / 'bad_model.py'
    bad_model.write_text(BAD_MODEL.format(base=DEFAULT_CONFIG))
    args, expect = dict(
        missing_config=([str(tmp_path / 'nope.py')], ['config file not found', 'nope.py']),
        unknown_model=([str(bad_model)], ['NoSuchSegmentor']),
        missing_data_root=([voc, '--cfg-options', f'data.train.data_root={tmp_path / "no_voc"}'], ['data_root', 'no_voc']),
        gpus_without_torchrun=(['--gpus', '4'], ['--gpus 4', 'torchrun']))[case]
    res = run([sys.executable, '-m', 'segnb.train', *args, '--work-dir', str(tmp_path / 'wd')], cwd=tmp_path, timeout=120)
    assert res['rc'] != 0 and 'Traceback' not in res['out'], res['out'][-3000:]
    errors = [l for l in res['out'].splitlines() if 'error:' in l]
    assert len(errors) == 1, errors
    assert all(s in errors[0] for s in expect), errors[0]
    assert res['leftover'] == []
