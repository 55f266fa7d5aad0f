"""Property-based tests of segnb.config: configs round-trip through every format, and no input makes the loader
raise anything but ConfigError."""
import json, keyword, math, os, tempfile, uuid
from pathlib import Path
import pytest
from hypothesis import example, given, settings, strategies as st, HealthCheck
from segnb.config import Config, ConfigError, ConfigDict, RESERVED_KEYS, merge_into

FIXTURES = Path(__file__).parent / 'fixtures' / 'configs'
PSP = FIXTURES / 'pspnet' / 'pspnet_r50-d8_512x1024_40k_cityscapes.py'
TMP = Path(tempfile.mkdtemp(prefix='segnb_config_props_'))
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

def top_key_ok(k):
    "A key that a .py config can define at top level and that the loader keeps."
    return (k.isidentifier() and not keyword.iskeyword(k) and not k.startswith('__')
            and k not in RESERVED_KEYS and k not in ('_base_', '_deprecation_'))

top_keys = st.from_regex(r'[A-Za-z_][A-Za-z0-9_]{0,11}', fullmatch=True).filter(top_key_ok)
# `{{` opens a template ({{fileDirname}}, {{_base_.x}}) in every format, as in mmcv: keep it out of plain strings
texts = st.text(max_size=20).filter(lambda s: '{{' not in s)
scalars = st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False) | texts

def values(keys, tuples=True):
    "Nested configs values: scalars, lists, tuples and dicts with `keys`."
    def extend(children):
        out = st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)
        return out | st.tuples(children, children) | st.lists(children, max_size=1).map(tuple) if tuples else out
    return st.recursive(scalars, extend, max_leaves=12)

def configs(keys, tuples=True):
    return st.dictionaries(top_keys, values(keys, tuples), max_size=5)

py_configs = configs(texts | st.integers(-5, 5))
yaml_configs = configs(texts | st.integers(-5, 5))
json_configs = configs(texts, tuples=False)

def fresh(ext):
    "A new file name: each example gets its own file."
    return TMP / f'{uuid.uuid4().hex}{ext}'

def same(a, b):
    "Equal, with floats compared bit for bit where == would mislead (-0.0)."
    if isinstance(a, float) and isinstance(b, float): return a == b and math.copysign(1, a) == math.copysign(1, b)
    if type(a) is not type(b) and not (isinstance(a, dict) and isinstance(b, dict)): return False
    if isinstance(a, dict): return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)): return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b

def keys_sorted(x):
    "`x` with every dict's keys in sorted order where they sort, as `yaml.dump` (so mmcv's YAML dump) writes them."
    if isinstance(x, dict):
        try: keys = sorted(x)
        except TypeError: keys = list(x)  # mixed int and str keys: yaml keeps their order
        return {k: keys_sorted(x[k]) for k in keys}
    if isinstance(x, (list, tuple)): return type(x)(keys_sorted(v) for v in x)
    return x

@SETTINGS
@given(py_configs)
@example({'A': {'º': None}})            # Python reads the name º back as o: written as a quoted key
def test_pretty_text_round_trips(d):
    cfg = Config(d)
    assert same(Config.fromstring(cfg.pretty_text, '.py').to_dict(), d)

@SETTINGS
@given(py_configs)
def test_py_dump_round_trips(d):
    path = fresh('.py')
    Config(d).dump(path)
    assert same(Config.fromfile(path).to_dict(), d)

@SETTINGS
@given(yaml_configs, st.sampled_from(['.yaml', '.yml']))
def test_yaml_dump_round_trips(d, ext):
    path = fresh(ext)
    Config(d).dump(path)
    back = Config.fromfile(path)
    assert same(back.to_dict(), keys_sorted(d))
    assert same(Config.fromstring(back.dump(), ext).to_dict(), keys_sorted(d))

@SETTINGS
@given(json_configs)
def test_json_dump_round_trips(d):
    path = fresh('.json')
    Config(d).dump(path)
    assert same(Config.fromfile(path).to_dict(), json.loads(json.dumps(d)))

# Random text, and text made of config fragments (more likely to reach the merge and template code).
FRAGMENTS = ['_base_ = ', "'../_base_/default_runtime.py'", "'missing.py'", '[', ']', '(', ')', '{', '}', 'dict(', ',',
             ' = ', ': ', '\n', 'model', 'a', '1', '0.5', 'None', 'True', '_delete_=True', '{{_base_.log_level}}',
             '{{_base_.nope}}', '{{fileDirname}}', '"x"', 'custom_imports', 'imports', "'os'", '-', '#', '    ',
             '_deprecation_', 'filename', '"', "'", '\\', '!!python/tuple', '---', '- ', '.', '=', 'lambda', 'import ']

random_text = st.text(max_size=60) | st.lists(st.sampled_from(FRAGMENTS), max_size=25).map(''.join)

@settings(max_examples=300, deadline=None)
@given(random_text, st.sampled_from(['.py', '.json', '.yaml', '.yml']))
def test_fromstring_raises_only_config_errors(text, fmt):
    cwd = os.getcwd()
    os.chdir(FIXTURES / 'pspnet')  # so that relative _base_ names can resolve
    try: cfg = Config.fromstring(text, fmt)
    except ConfigError as e: assert '\n' not in str(e)
    else: assert isinstance(cfg.to_dict(), dict)
    finally: os.chdir(cwd)

@settings(max_examples=200, deadline=None)
@given(random_text, st.sampled_from(['.py', '.json', '.yaml', '.yml']))
def test_fromfile_raises_only_config_errors(text, ext):
    target = fresh(ext)
    target.write_text(text)
    try: Config.fromfile(target)
    except ConfigError as e: assert '\n' not in str(e) and target.name in str(e), str(e)   # one line naming the file

segments = st.sampled_from(['model', 'backbone', 'decode_head', 'data', 'train', 'pipeline', 'optimizer', 'lr',
                            'workflow', 'crop_size', 'keys', 'out_indices', 'test', 'transforms',
                            '0', '1', '2', '12', 'x', '_delete_', 'depth', 'type', ''])
option_keys = st.lists(segments, min_size=1, max_size=5).map('.'.join)

@settings(max_examples=300, deadline=None)
@given(st.dictionaries(option_keys, values(texts | st.integers(0, 3)), max_size=4), st.booleans())
def test_merge_from_dict_raises_only_config_errors(options, allow_list_keys):
    cfg = Config.fromfile(PSP)
    try: cfg.merge_from_dict(options, allow_list_keys=allow_list_keys)
    except ConfigError as e: assert '\n' not in str(e)
    else:
        assert isinstance(cfg._cfg_dict, ConfigDict)
        assert Config.fromfile(PSP).model.backbone.depth == 50  # the cache was not touched

@SETTINGS
@given(py_configs, py_configs)
def test_merge_into_leaves_inputs_alone(a, b):
    a_before, b_before = repr(a), repr(b)
    try: merge_into(a, b)
    except ConfigError: pass
    assert (repr(a), repr(b)) == (a_before, b_before)
