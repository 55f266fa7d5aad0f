"""segnb's errors are one line and are also the built-in exceptions mmcv 1.7 raises in the same places;
`report_errors` turns them, and any OSError, into `segnb: error: ...` with exit status 1 (a traceback only with --debug)."""
import copy, errno, os, re
import pytest
from segnb.cli import SegnbError, report_errors
from segnb.config import Config, ConfigDict, ConfigError, check_config, TEST_NEEDS
from segnb.errors import BuildError, doing, error_like, os_error_line
from segnb.registry import MODELS, Registry, build_from_cfg, build_key, _BUILDING


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


# ---------- config errors carry mmcv's exception types ----------
@pytest.mark.parametrize('name, text, exc, contains', [
    ('syn.py', 'a = 1\nb = (\n', SyntaxError, 'syntax errors in config file /'),
    ('name.py', 'a = undefined_name\n', NameError, 'name.py:1: NameError'),
    ('c.txt', 'a = 1\n', OSError, "unknown config file extension '.txt'"),
    ('bad.json', '{"a": 1,,}', ValueError, 'JSON error'),
    ('list.yaml', '- 1\n', TypeError, 'a config must be a mapping'),
    ('reserved.py', 'filename = 1\n', KeyError, "'filename' is a reserved name"),
    ('base3.py', '_base_ = 3\n', TypeError, '_base_ must be a file name'),
    ('nobase.py', "_base_ = 'gone.py'\n", FileNotFoundError, '_base_ file not found'),
    ('imp.py', "custom_imports = dict(imports=['no_such_module_xyz'])\n", ImportError, 'no_such_module_xyz'),
])
def test_config_errors_have_mmcv_types(tmp_path, name, text, exc, contains):
    with pytest.raises(exc) as e: Config.fromfile(write(tmp_path, name, text))
    assert isinstance(e.value, ConfigError) and contains in str(e.value) and '\n' not in str(e.value)
    assert name in str(e.value)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match='config file not found'): Config.fromfile(tmp_path / 'nope.py')


def test_merge_errors_have_mmcv_types(tmp_path):
    write(tmp_path, 'a.py', 'x = 1\nitems = [dict(a=1)]\n')
    write(tmp_path, 'b.py', 'x = 2\n')
    with pytest.raises(KeyError, match="'x' is defined in two"): Config.fromfile(write(tmp_path, 'dup.py', "_base_ = ['a.py', 'b.py']\n"))
    with pytest.raises(TypeError, match='set _delete_=True'): Config.fromfile(write(tmp_path, 'd.py', "_base_ = 'a.py'\nx = dict(y=1)\n"))
    cfg = Config.fromfile(tmp_path / 'a.py')
    with pytest.raises(KeyError, match='index 3 is out of range'): cfg.merge_from_dict({'items.3.a': 2})
    with pytest.raises(TypeError): cfg.merge_from_dict({'items.0.a': 2}, allow_list_keys=False)
    with pytest.raises(TypeError): Config([0, 1])


def test_config_dict_attribute_error_is_a_config_error():
    cd = ConfigDict(a=1)
    with pytest.raises(AttributeError) as e: cd.model
    assert isinstance(e.value, ConfigError) and str(e.value) == "'ConfigDict' object has no attribute 'model'"
    assert getattr(cd, 'model', None) is None and not hasattr(Config(), 'model')


def test_deprecation_warns_on_every_load(tmp_path):
    write(tmp_path, 'old.py', "x = 1\n_deprecation_ = dict(expected='new.py', reference='http://x')\n")
    leaf = write(tmp_path, 'leaf.py', "_base_ = 'old.py'\n")
    for path in (tmp_path / 'old.py', leaf, leaf):  # the second load of leaf.py comes from the cache
        with pytest.warns(DeprecationWarning, match='Please use new.py instead'): Config.fromfile(path)


def test_key_error_message_has_no_quotes():
    e = error_like(KeyError('x'), 'data.train: the key is missing', ConfigError)
    assert isinstance(e, KeyError) and str(e) == 'data.train: the key is missing'


# ---------- OSErrors become one line ----------
@report_errors
def _raising(argv=None, exc=None): raise exc

CASES = [
    (errno.ENOSPC, 'No space left on device', '/w/iter_4.pth', None, 'no space left on device while writing /w/iter_4.pth'),
    (errno.EFBIG, 'File too large', '/w/iter_4.pth', None, 'file too large while writing /w/iter_4.pth'),
    (errno.EROFS, 'Read-only file system', '/ro/x.log', None, 'read-only file system while writing /ro/x.log'),
    (errno.EACCES, 'Permission denied', '/w', None, 'permission denied while accessing /w'),
    (errno.EISDIR, 'Is a directory', '/w/latest.pth', None, 'is a directory while accessing /w/latest.pth'),
    (errno.ENOTDIR, 'Not a directory', '/f/sub', None, 'not a directory while accessing /f/sub'),
    (errno.EEXIST, 'File exists', '/w', None, 'file exists while creating /w'),
    (errno.EXDEV, 'Invalid cross-device link', '/a', '/b', 'invalid cross-device link while renaming /a -> /b'),
]

@pytest.mark.parametrize('code, text, path, path2, line', CASES, ids=[errno.errorcode[c[0]] for c in CASES])
def test_os_errors_are_one_line(code, text, path, path2, line, capsys, monkeypatch):
    monkeypatch.delenv('SEGNB_DEBUG', raising=False)
    exc = OSError(code, text, path, None, path2)
    with pytest.raises(SystemExit) as e: _raising([], exc=exc)
    assert e.value.code == 1
    assert capsys.readouterr().err == f'segnb: error: {line}\n'
    with pytest.raises(OSError): _raising(['--debug'], exc=exc)


def test_doing_names_the_operation():
    with pytest.raises(OSError) as e:
        with doing('saving the checkpoint', '/w/latest.pth'): raise OSError(errno.ENOSPC, 'No space left on device')
    assert os_error_line(e.value) == 'no space left on device while saving the checkpoint /w/latest.pth'
    assert os_error_line(ConnectionRefusedError(errno.ECONNREFUSED, 'Connection refused')) == 'connection refused'


def test_segnb_errors_that_are_os_errors_keep_their_message(capsys, monkeypatch):
    monkeypatch.delenv('SEGNB_DEBUG', raising=False)
    with pytest.raises(SystemExit): _raising([], exc=_missing_config())
    assert capsys.readouterr().err.startswith('segnb: error: config file not found: ')

def _missing_config():
    try: Config.fromfile('/no/such/config.py')
    except FileNotFoundError as e: return e


# ---------- build errors name the key path and keep their type ----------
@pytest.fixture
def reg():
    r = Registry('things')
    @r.register_module()
    class Leaf:
        def __init__(self, n=1):
            if n < 0: raise ValueError(f'n must be >= 0, got {n}')
            {}['missing'] if n == 7 else None
    @r.register_module()
    class Tree:
        def __init__(self, leaf, leaves=(), copy_first=False):
            self.leaf = r.build(copy.deepcopy(leaf) if copy_first else leaf)
            self.leaves = [r.build(x) for x in leaves]
    return r


@pytest.mark.parametrize('cfg, exc, line', [
    (dict(type='Tree', leaf=dict(type='Leaf', n=-1)), ValueError, 'model.leaf: Leaf: ValueError: n must be >= 0, got -1'),
    (dict(type='Tree', leaf=dict(type='Leaf'), leaves=[dict(type='Leaf'), dict(type='Leaf', n=7)]), KeyError,
     "model.leaves[1]: Leaf: KeyError: 'missing'"),
    (dict(type='Tree', leaf=dict(type='Leaf', m=1)), TypeError, "model.leaf: Leaf: got an unexpected keyword argument 'm'"),
    (dict(type='Tree', leaf=dict(type='Leef')), KeyError, "model.leaf: 'Leef' is not in the things registry; did you mean 'Leaf'?"),
    (dict(type='Tree', leaf=3), TypeError, 'model.leaf: cfg must be a dict, but got int: 3'),
    (dict(type='Tree', leaf=dict(type='Leaf', n=-1), copy_first=True), ValueError, 'model: Leaf: ValueError: n must be'),
    (dict(type='Tree'), TypeError, "model: Tree: missing a required argument: 'leaf'"),
])
def test_build_errors_name_the_key_path(reg, cfg, exc, line):
    with pytest.raises(exc) as e: build_from_cfg(cfg, reg, key='model')
    assert isinstance(e.value, BuildError) and isinstance(e.value, SegnbError)
    assert str(e.value).startswith(line), str(e.value)
    with pytest.raises(exc, match=re.escape(line.split(':')[0])):
        with build_key('model'): reg.build(cfg)
    assert _BUILDING.get() == ()


def test_build_without_key_names_the_class(reg):
    with pytest.raises(ValueError, match=r'^leaf: Leaf: ValueError'): reg.build(dict(type='Tree', leaf=dict(type='Leaf', n=-1)))
    with pytest.raises(ValueError, match=r'^Leaf: ValueError'): reg.build(dict(type='Leaf', n=-1))
    with pytest.raises(KeyError, match='must contain the key "type"'): reg.build(dict(n=1))


def test_segnb_model_errors_name_the_key_path():
    from segnb.models import build_segmentor
    from segnb.train import DEFAULT_CONFIG
    cfg = Config.fromfile(DEFAULT_CONFIG)
    cfg.merge_from_dict({'model.backbone.type': 'ResNetX', 'model.decode_head.loss_decode.type': 'Nope'})
    with pytest.raises(KeyError, match=r"^model\.backbone: 'ResNetX' is not in the models registry"):
        with build_key('model'): build_segmentor(cfg.model)
    cfg.merge_from_dict({'model.backbone.type': 'ResNetV1c'})
    with pytest.raises(KeyError, match=r"^model\.decode_head\.loss_decode: 'Nope'"):
        with build_key('model'): build_segmentor(cfg.model)


# ---------- check_config ----------
def test_check_config_names_file_and_key(tmp_path):
    from segnb.train import DEFAULT_CONFIG
    good = Config.fromfile(DEFAULT_CONFIG)
    check_config(good); check_config(good, TEST_NEEDS)
    with pytest.raises(KeyError, match=r'empty\.py: the config is empty'): check_config(Config.fromfile(write(tmp_path, 'empty.py', '')))
    for key, value, line in [('data.samples_per_gpu', 'x', "data.samples_per_gpu must be an int, got str: 'x'"),
                             ('custom_hooks', [dict(type='A'), 'B'], "custom_hooks[1] must be a dict, got str: 'B'"),
                             ('custom_hooks', dict(type='A'), 'custom_hooks must be a list of dicts, got ConfigDict'),
                             ('load_from', 3, 'load_from must be a str or None, got int: 3'),
                             ('data.train', [dict(type='A'), 1], 'data.train[1] must be a dict'),
                             ('workflow', [('train', '1')], 'workflow must be a list of (mode, n) pairs')]:
        cfg = copy.deepcopy(good)
        *parents, last = key.split('.')
        node = cfg
        for part in parents: node = node[part]
        node[last] = value
        with pytest.raises(TypeError) as e: check_config(cfg)
        assert str(e.value) == f'{DEFAULT_CONFIG}: {line}' or str(e.value).startswith(f'{DEFAULT_CONFIG}: {line}'), str(e.value)
    cfg = copy.deepcopy(good); del cfg.data['train']
    with pytest.raises(KeyError, match='data.train is missing'): check_config(cfg)
    with pytest.raises(KeyError, match=r'^x\.py: model is missing'): check_config(dict(data=dict(train={})), ('model',), 'x.py')
