"""segnb.hub: mmcv 1.7's checkpoint names, the torch hub cache, downloads from a loopback server; no internet."""
import contextlib, functools, hashlib, http.server, json, os, socket, threading, time
from pathlib import Path
import pytest
import torch
import torch.nn as nn
from segnb.errors import SegnbError
from segnb.dist import launch_local
from segnb import hub
from segnb.models.utils.weights import load_pretrained, read_state_dict


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    "A fresh torch hub cache and mmcv home, no proxy, and any connection beyond 127.0.0.1 refused."
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('MMCV_HOME', str(tmp_path / 'mmcv'))
    monkeypatch.setenv('no_proxy', '*')
    monkeypatch.delenv('SEGNB_DOWNLOAD_TIMEOUT', raising=False)
    real = socket.create_connection
    def loopback_only(address, *args, **kwargs):
        if address[0] not in ('127.0.0.1', 'localhost'): raise AssertionError(f'a test tried to reach {address}')
        return real(address, *args, **kwargs)
    monkeypatch.setattr(socket, 'create_connection', loopback_only)


class Counting(http.server.SimpleHTTPRequestHandler):
    requests = []
    def log_message(self, *args): pass
    def do_GET(self):
        Counting.requests.append(self.path)
        super().do_GET()


@contextlib.contextmanager
def serve(folder):
    "An HTTP server for `folder` on 127.0.0.1, in a thread; yields its base URL."
    Counting.requests = []
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Counting, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try: yield f'http://127.0.0.1:{server.server_port}'
    finally: server.shutdown(); server.server_close()


def hashed_file(folder, obj, stem='foo'):
    "Save `obj` in `folder` under `stem-<first 8 hex of its sha256>.pth`; returns the file name."
    tmp = Path(folder) / 'tmp.pth'
    torch.save(obj, tmp)
    name = f'{stem}-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth'
    tmp.rename(Path(folder) / name)
    return name


def cache_dir(tmp_path): return tmp_path / 'torch' / 'hub' / 'checkpoints'


def test_resolve_each_scheme():
    r50 = 'https://download.openmmlab.com/pretrain/third_party/resnet50_v1c-2cccc1ad.pth'
    assert hub.resolve('open-mmlab://resnet50_v1c') == r50 == hub.resolve('openmmlab://resnet50_v1c')
    assert hub.resolve('open-mmlab://resnet50_caffe') == hub.load_table('open_mmlab')['detectron/resnet50_caffe']
    assert hub.resolve('mmcls://mobilenet_v2') == hub.load_table('mmcls')['mobilenet_v2']
    assert hub.resolve('torchvision://resnet50') == 'https://download.pytorch.org/models/resnet50-0676ba61.pth'
    assert hub.resolve('modelzoo://resnet50') == hub.resolve('torchvision://resnet50')
    assert hub.resolve('torchvision://ResNet50_Weights.IMAGENET1K_V2') == 'https://download.pytorch.org/models/resnet50-11ad3fa6.pth'
    assert hub.resolve('https://example.org/x/y-1234abcd.pth') == 'https://example.org/x/y-1234abcd.pth'
    assert hub.resolve('work_dirs/x/latest.pth') == 'work_dirs/x/latest.pth'
    assert hub.cache_path(r50) == os.path.join(os.environ['TORCH_HOME'], 'hub', 'checkpoints', 'resnet50_v1c-2cccc1ad.pth')


def test_resolve_refuses_clearly():
    with pytest.raises(SegnbError, match="unknown name 'resnet50_v1x'; did you mean resnet50_v1c"): hub.resolve('open-mmlab://resnet50_v1x')
    with pytest.raises(SegnbError, match='no pretrained weights'): hub.resolve('torchvision://shufflenetv2_x2.0')
    for name in ('s3://bucket/r50.pth', 'bucket:s3://a/r50.pth', 'pavi://model/1'):
        with pytest.raises(SegnbError, match=r's3:// and pavi:// need storage clients'): read_state_dict(name)


def test_user_open_mmlab_json_in_mmcv_home(tmp_path):
    home = tmp_path / 'mmcv'; home.mkdir()
    (home / 'open_mmlab.json').write_text(json.dumps({'mine': 'weights/mine.pth', 'resnet50_v1c': 'http://127.0.0.1:9/r-1.pth'}))
    assert hub.resolve('open-mmlab://mine') == str(home / 'weights' / 'mine.pth')
    assert hub.resolve('open-mmlab://resnet50_v1c') == 'http://127.0.0.1:9/r-1.pth'


def test_prefilled_cache_used_without_network(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, 'download_url_to_file', lambda *a, **k: pytest.fail('the network was used'))
    conv = nn.Conv2d(3, 4, 1)
    dst = Path(hub.cache_path(hub.resolve('open-mmlab://resnet50_v1c')))
    dst.parent.mkdir(parents=True)
    torch.save({'state_dict': {f'module.{k}': v for k, v in conv.state_dict().items()}}, dst)
    fresh = nn.Conv2d(3, 4, 1)
    assert load_pretrained(fresh, 'open-mmlab://resnet50_v1c') == ([], [])
    assert torch.equal(fresh.weight, conv.weight)
    cls = Path(hub.cache_path(hub.resolve('mmcls://mobilenet_v2')))
    torch.save({'meta': {}, 'state_dict': {'backbone.conv.weight': torch.ones(1), 'head.fc.weight': torch.ones(1)}}, cls)
    assert list(hub.read_checkpoint_any('mmcls://mobilenet_v2')['state_dict']) == ['conv.weight']


def test_resnet_v1c_backbone_from_prefilled_cache(tmp_path):
    from segnb.models import build_backbone
    cfg = dict(type='ResNetV1c', depth=18, pretrained='open-mmlab://resnet18_v1c', norm_cfg=dict(type='BN'))
    dst = Path(hub.cache_path(hub.resolve(cfg['pretrained'])))
    dst.parent.mkdir(parents=True)
    ref = build_backbone({**cfg, 'pretrained': None})
    torch.save({'state_dict': ref.state_dict()}, dst)
    model = build_backbone(cfg)
    model.init_weights()
    assert all(torch.equal(v, ref.state_dict()[k]) for k, v in model.state_dict().items())


def test_download_from_loopback_then_cached(tmp_path):
    srv = tmp_path / 'srv'; srv.mkdir()
    name = hashed_file(srv, {'state_dict': {'w': torch.arange(3.)}})
    with serve(srv) as base:
        assert torch.equal(read_state_dict(f'{base}/{name}')['w'], torch.arange(3.))
        assert torch.equal(read_state_dict(f'{base}/{name}')['w'], torch.arange(3.))
        assert Counting.requests == [f'/{name}']                      # the second read came from the cache
    assert sorted(p.name for p in cache_dir(tmp_path).iterdir()) == [name]


def test_wrong_hash_refused_and_not_cached(tmp_path):
    srv = tmp_path / 'srv'; srv.mkdir()
    name = hashed_file(srv, {'w': torch.ones(2)})
    os.rename(srv / name, srv / 'foo-1234abcd.pth')
    with serve(srv) as base:
        url = f'{base}/foo-1234abcd.pth'
        with pytest.raises(SegnbError, match=r'could not download .*invalid hash value \(expected "1234abcd"') as e:
            hub.cached_file(url)
        with pytest.raises(SegnbError, match='HTTP Error 404'): hub.cached_file(f'{base}/missing-1234abcd.pth')
    assert '\n' not in str(e.value) and url in str(e.value)
    assert str(e.value).endswith(f'put the file at {cache_dir(tmp_path) / "foo-1234abcd.pth"}')
    assert list(cache_dir(tmp_path).iterdir()) == []                  # no partial or wrong file left behind


def test_silent_server_times_out(tmp_path, monkeypatch):
    monkeypatch.setenv('SEGNB_DOWNLOAD_TIMEOUT', '0.2')
    with socket.socket() as silent:                                   # accepts connections, never answers
        silent.bind(('127.0.0.1', 0)); silent.listen(4)
        url = f'http://127.0.0.1:{silent.getsockname()[1]}/resnet50_v1c-2cccc1ad.pth'
        t0 = time.time()
        with pytest.raises(SegnbError) as e: read_state_dict(url)
    assert time.time() - t0 < 5
    dst = cache_dir(tmp_path) / 'resnet50_v1c-2cccc1ad.pth'
    assert str(e.value) == f'could not download {url}: no answer within 0.2 s (SEGNB_DOWNLOAD_TIMEOUT); put the file at {dst}'
    assert not dst.exists() and socket.getdefaulttimeout() is None
    monkeypatch.setenv('SEGNB_DOWNLOAD_TIMEOUT', '-1')
    with pytest.raises(SegnbError, match="SEGNB_DOWNLOAD_TIMEOUT must be a number of seconds > 0, got '-1'"): hub.cached_file(url)


def _rank_reads(urls):
    "One rank's view of each URL: the file it was given, or its error line."
    out = []
    for url in urls:
        try: out.append(Path(hub.cached_file(url)).read_bytes())
        except SegnbError as e: out.append(str(e))
    return out


def test_two_ranks_one_download(tmp_path):
    srv = tmp_path / 'srv'; srv.mkdir()
    name = hashed_file(srv, {'w': torch.ones(2)})
    with serve(srv) as base:
        got = launch_local(_rank_reads, nprocs=2, args=([f'{base}/{name}', f'{base}/missing-1234abcd.pth'],))
        assert Counting.requests == [f'/{name}', '/missing-1234abcd.pth']   # rank 0 downloaded, rank 1 waited
    assert got[0][0] == got[1][0] == (srv / name).read_bytes()
    assert got[0][1] == got[1][1] and 'HTTP Error 404' in got[0][1]        # every rank stops with rank 0's error
