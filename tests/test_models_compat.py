"""segnb's models against mmsegmentation 0.30: parameter names and shapes, strict loading, same outputs.

The fixtures in tests/fixtures/state_dicts/ were written by mmseg 0.30 itself (make_mmseg_fixtures.py, run by hand
in an environment with mmseg; not part of this suite). tests/fixtures/mmseg_models/ holds verbatim copies of
mmseg 0.30's configs/_base_/models files.
"""
import json, runpy
from pathlib import Path

import pytest
import torch

from segnb.errors import SegnbError
from segnb.models import build_backbone, build_segmentor

FIX = Path(__file__).parent / 'fixtures'
SHAPES = sorted((FIX / 'state_dicts').glob('*.json'))
BASES = sorted((FIX / 'mmseg_models').glob('*.py'))


def build_shapes(model_cfg):
    "Build on the meta device (no memory, no init cost) and return {key: shape}."
    with torch.device('meta'):
        model = build_segmentor(model_cfg)
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def test_fixtures_present():
    assert len(SHAPES) == 16 and len(BASES) == 7


@pytest.mark.parametrize('path', SHAPES, ids=lambda p: p.stem)
def test_state_dict_names_and_shapes_match_mmseg(path):
    ref = json.loads(path.read_text())
    ours = build_shapes(ref['model'])
    assert sorted(set(ref['state_dict']) - set(ours)) == [], 'keys mmseg has and segnb lacks'
    assert sorted(set(ours) - set(ref['state_dict'])) == [], 'keys segnb has and mmseg lacks'
    assert list(ours) == list(ref['state_dict']), 'same keys, different order'
    assert ours == ref['state_dict']


@pytest.mark.parametrize('path', BASES, ids=lambda p: p.stem)
def test_mmseg_base_model_configs_build(path):
    "mmseg's own _base_/models/*.py, executed as python, build the same model as mmseg built for the full config."
    model_cfg = runpy.run_path(str(path))['model']
    ref_name = {'fcn_unet_s5-d16': 'fcn_unet_s5-d16_64x64_40k_drive'}.get(path.stem)
    ref_name = ref_name or (path.stem.replace('r50-d8', 'r50-d8_512x1024_80k_cityscapes') if 'r50' in path.stem
                            else path.stem + '_64x64_40k_drive')
    ref = json.loads((FIX / 'state_dicts' / f'{ref_name}.json').read_text())
    assert build_shapes(model_cfg) == ref['state_dict']


def test_open_mmlab_pretrained_fails_clearly(tmp_path, monkeypatch):
    "mmseg's own config builds; offline, loading its open-mmlab:// weights is one line naming the URL and the cache path."
    from urllib.error import URLError
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    def offline(url, dst, *args, **kwargs): raise URLError(OSError('network is unreachable'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file', offline)
    cfg = runpy.run_path(str(FIX / 'mmseg_models' / 'fcn_r50-d8.py'))['model']
    model = build_segmentor(cfg)        # building works; only loading the weights needs the file
    url = 'https://download.openmmlab.com/pretrain/third_party/resnet50_v1c-2cccc1ad.pth'
    with pytest.raises(SegnbError, match=f'could not download {url}: network is unreachable; put the file at '
                                         f'{tmp_path}/hub/checkpoints/resnet50_v1c-2cccc1ad.pth'):
        model.init_weights()


@pytest.mark.parametrize('depth', [50, 101])
def test_resnet_d8_output_shapes(depth):
    cfg = runpy.run_path(str(FIX / 'mmseg_models' / 'fcn_r50-d8.py'))['model']['backbone']
    backbone = build_backbone({**cfg, 'depth': depth}).eval()
    backbone.init_weights()
    with torch.no_grad(): feats = backbone(torch.rand(1, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(1, 256, 16, 16), (1, 512, 8, 8), (1, 1024, 8, 8), (1, 2048, 8, 8)]


def test_fcn_r50_d8_logits_at_input_size():
    cfg = runpy.run_path(str(FIX / 'mmseg_models' / 'fcn_r50-d8.py'))['model']
    model = build_segmentor({**cfg, 'pretrained': None}).eval()
    with torch.no_grad(): logits = model.encode_decode(torch.rand(1, 3, 64, 48), None)
    assert tuple(logits.shape) == (1, 19, 64, 48)


@pytest.fixture(scope='module')
def tiny():
    return torch.load(FIX / 'state_dicts' / 'tiny_fcn_r18.pth', map_location='cpu', weights_only=True)


def tiny_model(tiny):
    model = build_segmentor(json.loads(tiny['model']))
    model.load_state_dict(tiny['state_dict'], strict=True)
    return model


def test_tiny_fixture_is_small():
    assert (FIX / 'state_dicts' / 'tiny_fcn_r18.pth').stat().st_size < 2 * 1024 * 1024


def test_mmseg_checkpoint_gives_same_logits(tiny):
    model = tiny_model(tiny).eval()
    meta = json.loads(tiny['img_meta'])
    with torch.no_grad():
        logits = model.encode_decode(tiny['img'], [meta, meta])
        probs = model.inference(tiny['img'], [meta, meta], rescale=True)      # slide windows, flip, rescale
    assert logits.shape == tiny['logits'].shape
    torch.testing.assert_close(logits, tiny['logits'], atol=1e-5, rtol=1e-5)
    assert probs.shape == tiny['slide_flip_probs'].shape == (2, 5, 50, 60)
    torch.testing.assert_close(probs, tiny['slide_flip_probs'], atol=1e-5, rtol=1e-5)


def test_mmseg_checkpoint_gives_same_losses(tiny):
    model = tiny_model(tiny).train()
    model.decode_head.dropout = model.auxiliary_head.dropout = None
    meta = json.loads(tiny['img_meta'])
    losses = model.forward_train(tiny['img'], [meta, meta], tiny['gt_semantic_seg'])
    assert sorted(losses) == sorted(tiny['losses'])
    for k, v in tiny['losses'].items():
        torch.testing.assert_close(losses[k].detach().reshape(()), v, atol=1e-4, rtol=1e-5, msg=k)


def test_perturbed_checkpoint_is_detected(tiny):
    "The logits check can fail: one changed weight changes the output."
    model = tiny_model(tiny).eval()
    with torch.no_grad():
        model.backbone.layer3[0].conv1.weight.mul_(1.5)
        logits = model.encode_decode(tiny['img'], None)
    assert not torch.allclose(logits, tiny['logits'], atol=1e-5)


def test_group_norm_and_checkpointing_train():
    "GN everywhere (mmcv names the layers gn), activation checkpointing on: same gradients as without it."
    cfg = runpy.run_path(str(FIX / 'mmseg_models' / 'deeplabv3plus_r50-d8.py'))['model']
    gn = dict(type='GN', num_groups=4, requires_grad=True)
    cfg = {**cfg, 'pretrained': None,
           'backbone': {**cfg['backbone'], 'depth': 18, 'stem_channels': 8, 'base_channels': 8, 'norm_cfg': gn},
           'decode_head': {**cfg['decode_head'], 'in_channels': 64, 'channels': 8, 'c1_in_channels': 8,
                           'c1_channels': 4, 'norm_cfg': gn, 'dropout_ratio': 0},
           'auxiliary_head': {**cfg['auxiliary_head'], 'in_channels': 32, 'channels': 8, 'norm_cfg': gn,
                              'dropout_ratio': 0}}
    torch.manual_seed(0)
    plain = build_segmentor(cfg)
    ckpt = build_segmentor({**cfg, 'backbone': {**cfg['backbone'], 'with_cp': True}})
    ckpt.load_state_dict(plain.state_dict())
    assert 'backbone.layer1.0.gn1.weight' in plain.state_dict() and 'decode_head.bottleneck.gn.weight' in plain.state_dict()
    batch = dict(img=torch.rand(2, 3, 32, 32), img_metas=[{}, {}], gt_semantic_seg=torch.randint(0, 19, (2, 1, 32, 32)))
    for m in (plain, ckpt): m.train_step(batch)['loss'].backward()
    torch.testing.assert_close(ckpt.backbone.stem[0].weight.grad, plain.backbone.stem[0].weight.grad)


PACKAGE_CONFIGS = sorted(Path(__file__).parent.parent.glob('segnb/configs/*/*_r*-d8_512x1024_40k_cityscapes.py'))


@pytest.mark.parametrize('path', PACKAGE_CONFIGS, ids=lambda p: p.stem)
def test_package_configs_match_mmseg(path):
    "segnb's shipped configs (40k schedules) build mmseg's models (the 80k configs share the model)."
    from segnb.config import Config
    ref = json.loads((FIX / 'state_dicts' / path.name.replace('40k', '80k').replace('.py', '.json')).read_text())
    assert build_shapes(Config.fromfile(str(path)).model) == ref['state_dict']


def _norm_type_in_process_group(rank, world_size, init_file, out_dir):
    import torch.distributed as dist
    from segnb.models import build_norm_layer
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=world_size)
    try:
        _, layer = build_norm_layer(dict(type='SyncBN', requires_grad=True), 4)
        layer.train()(torch.rand(2, 4, 3, 3))                      # must run on CPU processes
        Path(out_dir, f'{rank}.txt').write_text(type(layer).__name__)
    finally: dist.destroy_process_group()


def test_sync_bn_is_plain_bn_in_a_cpu_process_group(tmp_path):
    "SyncBN needs CUDA: CPU processes (gloo) get BatchNorm2d, with the same state_dict names."
    import torch.multiprocessing as mp
    mp.spawn(_norm_type_in_process_group, args=(2, str(tmp_path / 'init'), str(tmp_path)), nprocs=2)
    assert [(tmp_path / f'{r}.txt').read_text() for r in range(2)] == ['BatchNorm2d'] * 2
