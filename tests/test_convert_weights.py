"""segnb.tools.convert_weights against mmseg 0.30's own converters.

tests/fixtures/converters/<case>.json.gz were written by tests/fixtures/converters/make_weights_fixtures.py, which runs
the conversion functions of mmseg's tools/model_converters/*2mmseg.py on small state_dicts named as the official
releases name them; the same file builds those sources here (it needs torch only)."""
import contextlib, errno, gzip, importlib.util, io, json, os, re, subprocess, sys
from collections import OrderedDict
from pathlib import Path
import numpy as np
import pytest, torch
import segnb.checkpoint
from segnb.models import build_backbone
from segnb.tools.convert_weights import CONVERTERS, main

HERE = Path(__file__).parent / 'fixtures' / 'converters'
_spec = importlib.util.spec_from_file_location('make_weights_fixtures', HERE / 'make_weights_fixtures.py')
gen = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(gen)

CASES = {  # fixture: (converter, its extra argument)
    'vit': ('vit', None), 'swin': ('swin', None), 'mit': ('mit', None), 'beit': ('beit', None),
    'vitjax': ('vitjax', None), 'twins_pcpvt': ('twins', 'pcpvt'), 'twins_svt': ('twins', 'svt'), 'stdc_STDC1': ('stdc', 'STDC1'), 'stdc_STDC2': ('stdc', 'STDC2'),
}
STDC = dict(type='STDCNet', in_channels=3, channels=(4, 8, 16, 32, 64), bottleneck_type='cat', norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'))
TWINS = dict(embed_dims=[8, 16], patch_sizes=[4, 2], strides=[4, 2], num_heads=[1, 2], mlp_ratios=[2, 2], sr_ratios=[2, 1],
             qkv_bias=True, out_indices=(0, 1))
# the tiny backbone each source fits, and what mmseg's non-strict load leaves: (missing, unexpected) as patterns, None: nothing
MODELS = {
    'vit': (dict(type='VisionTransformer', img_size=32, patch_size=8, embed_dims=16, num_layers=2, num_heads=2, final_norm=True), None, None),
    'swin': (dict(type='SwinTransformer', pretrain_img_size=32, embed_dims=8, depths=(2, 2), num_heads=(1, 2), strides=(4, 2),
                  window_size=2, out_indices=(0, 1)), r'norm[01]\.(weight|bias)', r'norm\.(weight|bias)|stages\.\d\.blocks\.1\.attn_mask'),
    'vitjax': (dict(type='VisionTransformer', img_size=32, patch_size=8, embed_dims=16, num_layers=2, num_heads=2, final_norm=True), None, None),
    'mit': (dict(type='MixVisionTransformer', embed_dims=8, num_stages=2, num_layers=[1, 1], num_heads=[1, 2], patch_sizes=[7, 3],
                 strides=[4, 2], sr_ratios=[2, 1], out_indices=(0, 1)), None, None),
    'beit': (dict(type='BEiT', img_size=32, patch_size=8, embed_dims=16, num_layers=2, num_heads=2), None, r'(fc_norm|head)\.(weight|bias)'),
    'twins_pcpvt': (dict(type='PCPVT', depths=[1, 1], **TWINS), None, r'norm\.(weight|bias)'),
    'twins_svt': (dict(type='SVT', depths=[2, 2], windiow_sizes=[2, 2], **TWINS), r'norm_list\.[01]\.(weight|bias)', r'norm\.(weight|bias)'),
    'stdc_STDC1': (dict(stdc_type='STDCNet1', **STDC), None, r'x(8|16|32)\.\d\.(layers|downsample)\..*'),
    'stdc_STDC2': (dict(stdc_type='STDCNet2', **STDC), None, r'x(8|16|32)\.\d\.(layers|downsample)\..*'),
}

def fixture(case):
    with gzip.open(HERE / f'{case}.json.gz', 'rt') as f: return json.load(f)

def converted(case):
    name, extra = CASES[case]
    return CONVERTERS[name][0](gen.source_state_dict(case), extra)

@pytest.mark.parametrize('case', CASES)
def test_same_keys_shapes_values_as_mmseg(case):
    rec = fixture(case)
    assert gen.describe(gen.source_state_dict(case)) == rec['source']      # the source the fixture was recorded from
    got, want = gen.describe(converted(case)), rec['converted']
    assert [r[0] for r in got] == [r[0] for r in want]                       # the same keys, in the same order
    assert got == want                                                       # and the same shapes, dtypes and bytes

@pytest.mark.parametrize('case', CASES)
def test_converted_loads_into_segnb_backbone(case):
    cfg, missing_ok, unexpected_ok = MODELS[case]
    model, sd = build_backbone(cfg), converted(case)
    if missing_ok is None and unexpected_ok is None:
        model.load_state_dict(sd, strict=True)
    else:
        missing, unexpected = model.load_state_dict(sd, strict=False)      # still an error for a wrong shape
        for keys, pattern in ((missing, missing_ok), (unexpected, unexpected_ok)):
            assert all(pattern and re.fullmatch(pattern, k) for k in keys), (keys, pattern)
            assert bool(keys) == bool(pattern)
    own = model.state_dict()
    for k, v in sd.items():
        if k in own: assert torch.equal(own[k], v), k

def test_every_converter_has_a_fixture():
    assert {name for name, _ in CASES.values()} == set(CONVERTERS)

@pytest.mark.parametrize('wrap', ['state_dict', 'model', None])
def test_cli_reads_state_dict_or_model_and_writes_bare_state_dict(tmp_path, wrap, capsys):
    src = gen.source_state_dict('stdc_STDC2')
    torch.save({wrap: src, 'meta': {}} if wrap else src, tmp_path / 'stdc.tar')
    main(['stdc', str(tmp_path / 'stdc.tar'), str(tmp_path / 'out' / 'stdc2.pth'), 'STDC2'])
    saved = torch.load(tmp_path / 'out' / 'stdc2.pth', weights_only=True)
    assert gen.describe(saved) == fixture('stdc_STDC2')['converted']
    assert capsys.readouterr().out.strip() == f'{tmp_path}/out/stdc2.pth: {len(saved)} tensors'
    assert sorted(os.listdir(tmp_path / 'out')) == ['stdc2.pth']

def _fails(argv, capsys):
    with pytest.raises(SystemExit) as e: main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return e.value.code, err[0]

def test_missing_src_is_one_line(tmp_path, capsys):
    code, line = _fails(['swin', str(tmp_path / 'nope.pth'), str(tmp_path / 'swin.pth')], capsys)
    assert code == 1 and line == f'segnb: error: checkpoint not found: {tmp_path}/nope.pth'
    assert not (tmp_path / 'swin.pth').exists()

def test_cli_rejects_wrong_twins_model(tmp_path, capsys):
    torch.save(gen.source_state_dict('twins_svt'), tmp_path / 'svt.pth')
    code, line = _fails(['twins', str(tmp_path / 'svt.pth'), str(tmp_path / 'out.pth'), 'gvt'], capsys)
    assert code == 2 and "invalid choice: 'gvt'" in line

def test_src_is_never_overwritten(tmp_path, capsys):
    torch.save({'model': gen.source_state_dict('vit')}, tmp_path / 'vit.pth')
    before = (tmp_path / 'vit.pth').read_bytes()
    code, line = _fails(['vit', str(tmp_path / 'vit.pth'), str(tmp_path / '.' / 'vit.pth')], capsys)
    assert code == 1 and 'is the input' in line and (tmp_path / 'vit.pth').read_bytes() == before

def test_dst_written_atomically(tmp_path, capsys, monkeypatch):
    "A write that fails half way leaves the old DST whole and no temporary file; a good one replaces it."
    torch.save({'model': gen.source_state_dict('beit')}, tmp_path / 'beit.pth')
    (tmp_path / 'dst.pth').write_bytes(b'old')
    def half_write(obj, f):
        f.write(b'x' * 100)
        raise OSError(errno.ENOSPC, 'No space left on device')
    with monkeypatch.context() as m:
        m.setattr(segnb.checkpoint, 'write_payload', half_write)
        code, line = _fails(['beit', str(tmp_path / 'beit.pth'), str(tmp_path / 'dst.pth')], capsys)
    assert code == 1 and line == f'segnb: error: no space left on device while writing {tmp_path}/dst.pth'
    assert (tmp_path / 'dst.pth').read_bytes() == b'old'
    assert sorted(os.listdir(tmp_path)) == ['beit.pth', 'dst.pth']
    main(['beit', str(tmp_path / 'beit.pth'), str(tmp_path / 'dst.pth')])
    assert gen.describe(torch.load(tmp_path / 'dst.pth', weights_only=True)) == fixture('beit')['converted']

def test_runs_as_a_module(tmp_path):
    torch.save({'state_dict': gen.source_state_dict('mit')}, tmp_path / 'mit_b0.pth')
    r = subprocess.run([sys.executable, '-m', 'segnb.tools.convert_weights', 'mit', str(tmp_path / 'mit_b0.pth'),
                        str(tmp_path / 'mit.pth')], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert gen.describe(torch.load(tmp_path / 'mit.pth', weights_only=True)) == fixture('mit')['converted']

def test_vitjax_reads_npz(tmp_path, capsys):
    np.savez(tmp_path / 'ViT-T_8.npz', **{k: v.numpy() for k, v in gen.source_state_dict('vitjax').items()})
    main(['vitjax', str(tmp_path / 'ViT-T_8.npz'), str(tmp_path / 'vit_jax.pth')])
    assert gen.describe(torch.load(tmp_path / 'vit_jax.pth', weights_only=True)) == fixture('vitjax')['converted']
    (tmp_path / 'broken.npz').write_bytes(b'PK not really')
    code, line = _fails(['vitjax', str(tmp_path / 'broken.npz'), str(tmp_path / 'x.pth')], capsys)
    assert code == 1 and line.startswith(f'segnb: error: {tmp_path}/broken.npz: not a readable .npz file')
    np.savez(tmp_path / 'partial.npz', cls=np.zeros((1, 1, 4), np.float32))
    code, line = _fails(['vitjax', str(tmp_path / 'partial.npz'), str(tmp_path / 'x.pth')], capsys)
    assert line == f'segnb: error: {tmp_path}/partial.npz: no embedding/kernel in it: not a jax ViT'

def test_stdc_seg_model_converts_as_its_backbone(tmp_path):
    "A whole STDC-Seg model keeps the backbone under `cp.backbone.` (mmseg's script fails there); it converts as the backbone."
    src = gen.source_state_dict('stdc_STDC1')
    whole = OrderedDict([('cp.arm16.conv.conv.weight', torch.zeros(1))] + [(f'cp.backbone.{k}', v) for k, v in src.items()])
    assert gen.describe(CONVERTERS['stdc'][0](whole, 'STDC1')) == fixture('stdc_STDC1')['converted']
