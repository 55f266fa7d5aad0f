"Property-based tests of the `--cfg-options` grammar (segnb.cli.DictAction)."
import contextlib, io, warnings
from hypothesis import given, settings, strategies as st
import segnb.cli as cli

def _parse(items):
    "Run the train parser on `--cfg-options *items`; return ('ok', dict) or ('error', stderr text)."
    err = io.StringIO()
    with contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try: return 'ok', cli.parse_args(['--cfg-options', *items], env={}).cfg_options
        except SystemExit as e:
            assert e.code == 2, e.code
            return 'error', err.getvalue()

_alphabet = st.sampled_from(list('ab01.,=()[]\'" -_xTFNe+') + ['True', 'None', '1.5', '\n', '\t', '('*3, ']'*3])
_items = st.lists(_alphabet, max_size=25).map(''.join).filter(lambda s: not s.startswith('-'))

@settings(max_examples=400, deadline=None)
@given(st.lists(_items, min_size=1, max_size=3))
def test_random_items_parse_or_fail_in_one_line(items):
    kind, out = _parse(items)
    if kind == 'ok':
        assert isinstance(out, dict) and set(out) <= {i.partition('=')[0] for i in items}
    else:
        msg = out.split(': error: ', 1)[1]
        assert msg.endswith('\n') and '\n' not in msg[:-1], out
        assert msg.startswith('argument --cfg-options') and any(repr(i) in msg for i in items), out  # names the item

@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40).filter(lambda s: not s.startswith('-')))
def test_any_text_parses_or_fails_cleanly(item):
    kind, out = _parse([item])
    if kind == 'error': assert out.split(': error: ', 1)[1].count('\n') == 1, out

_word = st.from_regex(r'[A-Za-z_][A-Za-z0-9_]{0,8}', fullmatch=True).filter(lambda s: cli.parse_scalar(s) == s)
_scalar = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=False, allow_infinity=False),
                    st.booleans(), st.none(), _word)
_value = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                                                      st.tuples(inner), st.just(())), max_leaves=12)

@settings(max_examples=400, deadline=None)
@given(_value)
def test_python_literals_round_trip(value):
    kind, out = _parse([f'key={value!r}'])
    assert kind == 'ok', out
    got = out['key']
    # repr tells lists from tuples and 1 from 1.0 from True
    assert got == value and repr(got) == repr(value), (value, got)

@settings(max_examples=200, deadline=None)
@given(st.lists(_scalar, min_size=2, max_size=5))
def test_bare_comma_lists_are_lists(values):
    text = ','.join(str(v) for v in values)
    kind, out = _parse([f'k={text}'])
    assert kind == 'ok' and out['k'] == values, (text, out)
