"""`python -m segnb.tools.pytorch2onnx` and `python -m segnb.tools.pytorch2torchscript` on a checkpoint of the default
config: the files they write give PyTorch's logits (relative difference <= 1e-4) at two input sizes, and the ONNX
graph's first output is mmseg's label map. A missing `export` extra is one line naming it."""
import subprocess, sys
from pathlib import Path
import pytest
import torch
from segnb.train import DEFAULT_CONFIG
from segnb.tools import pytorch2onnx as p2o, pytorch2torchscript as p2t

ort = pytest.importorskip('onnxruntime')
pytest.importorskip('onnx')
REL_TOL = 1e-4
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    "A checkpoint of the default config's model (fresh weights, as training saves them), and the model."
    base = tmp_path_factory.mktemp('export')
    torch.manual_seed(0)
    model, _ = p2o.load_segmentor(DEFAULT_CONFIG)
    torch.save(dict(state_dict=model.state_dict(), meta={}), base / 'model.pth')
    return base, model


def relative(ours, theirs):
    return ((ours - theirs).abs().max() / ours.abs().max()).item()


def test_onnx_dynamic_axes_two_sizes(checkpoint, capsys):
    base, model = checkpoint
    out = p2o.main([DEFAULT_CONFIG, str(base / 'model.pth'), '--shape', '32', '--dynamic-export', '--verify',
                    '--output-file', str(base / 'model.onnx')])
    printed = capsys.readouterr().out
    assert 'Successfully exported ONNX model' in printed and printed.count('max abs difference of the logits') == 2
    sess = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    assert [o.name for o in sess.get_outputs()] == ['output', 'logits']
    for shape in [(1, 3, 32, 32), (2, 3, 48, 64)]:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad(): logits = model.encode_decode(x, None)
        labels, ort_logits = (torch.from_numpy(a) for a in sess.run(None, {'input': x.numpy()}))
        assert ort_logits.shape == logits.shape and relative(logits, ort_logits) <= REL_TOL
        assert labels.shape == (1, shape[0], *shape[2:]) and labels.dtype == torch.int64
        assert (labels[0] == logits.argmax(1)).float().mean() > 0.99


def test_onnx_checkpoint_is_loaded(checkpoint):
    "The exported weights are the checkpoint's, not the config's initial ones."
    base, model = checkpoint
    sd = {k: v + 0.5 if k.endswith('conv_seg.bias') else v for k, v in model.state_dict().items()}
    torch.save(dict(state_dict=sd, meta={}), base / 'shifted.pth')
    out = p2o.main([DEFAULT_CONFIG, '--checkpoint', str(base / 'shifted.pth'), '--shape', '32',
                    '--output-file', str(base / 'shifted.onnx')])
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad(): logits = model.encode_decode(x, None)
    ort_logits = torch.from_numpy(ort.InferenceSession(out, providers=['CPUExecutionProvider']).run(['logits'], {'input': x.numpy()})[0])
    assert relative(logits + 0.5, ort_logits) <= REL_TOL


def test_torchscript_two_sizes(checkpoint, capsys):
    base, model = checkpoint
    out = p2t.main([DEFAULT_CONFIG, str(base / 'model.pth'), '--shape', '32', '--verify', '--output-file', str(base / 'model.pt')])
    assert capsys.readouterr().out.count('max abs difference of the logits') == 2
    loaded = torch.jit.load(out)
    for shape in [(1, 3, 32, 32), (2, 3, 48, 64)]:
        x = torch.rand(shape)
        with torch.no_grad(): assert relative(model.forward_dummy(x), loaded(x)) <= REL_TOL


def test_missing_extra_is_one_line(tmp_path):
    "Without onnx, the command prints one line naming the extra and exits 1."
    code = ('import sys; sys.modules["onnx"] = None; from segnb.tools.pytorch2onnx import main; '
            f'main([{DEFAULT_CONFIG!r}, "--shape", "32", "--output-file", {str(tmp_path / "m.onnx")!r}])')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == ['segnb: error: onnx is not installed: pip install "segnb[export]" installs it']
