"""Check that the notebooks are committed executed: every notebook has a Python 3 kernelspec, and every code cell
that shows something (it ends with an expression whose value Jupyter displays, or it prints, plots or displays)
carries the outputs of a run. Exits 1 naming the cells that do not.

`python tools/check_outputs.py [NOTEBOOK ...]` (default: nbs/*.ipynb)."""
import ast, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SILENT_CALLS = {'assert', 'setattr', 'delattr', 'exec', 'seed', 'manual_seed', 'close', 'remove', 'rmtree',
                'set_num_threads', 'register_hook', 'run', 'append', 'update', 'write', 'save', 'mkdir', 'makedirs',
                'barrier', 'one_line_error'}
SHOWING = ('print(', 'plt.show(', 'display(', '.show()', 'show_samples(', 'plot_')


def last_statement(source):
    "The last top-level statement of a cell (None when the cell does not parse as Python, e.g. shell magics)."
    lines = [l for l in source.splitlines() if not l.lstrip().startswith(('#|', '%', '!'))]
    try: body = ast.parse('\n'.join(lines)).body
    except SyntaxError: return None
    return body[-1] if body else None


def displays(stmt):
    "True when Jupyter shows the value of `stmt`: an expression that is not a call returning nothing by convention."
    if not isinstance(stmt, ast.Expr): return False
    if isinstance(stmt.value, ast.Call):
        f = stmt.value.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, 'id', '')
        return not (name.startswith(('test_', 'assert')) or name in SILENT_CALLS)
    return not isinstance(stmt.value, ast.Constant)


def should_show(cell):
    "A code cell that is not exported and either ends with a displayed expression or prints/plots/displays."
    src = ''.join(cell['source'])
    if any(l.replace(' ', '') in ('#|export', '#|exporti', '#|hide', '#|eval:false') or l.replace(' ', '').startswith('#|export')
           for l in src.splitlines()[:3]): return False
    # top-level lines that may show something: not imports, not tests (`test_fail(lambda: plot_curves(...))` shows nothing)
    top = [l for l in src.splitlines() if l and not l.startswith((' ', '\t', '#', 'import ', 'from ', 'test_', 'assert'))]
    return displays(last_statement(src)) or any(s in l for l in top for s in SHOWING)


def problems(path):
    "One message per missing kernelspec or per showing cell without outputs."
    nb = json.loads(Path(path).read_text())
    out = []
    if nb.get('metadata', {}).get('kernelspec', {}).get('name') != 'python3': out.append(f'{path}: no Python 3 kernelspec')
    for i, c in enumerate(nb['cells']):
        if c['cell_type'] == 'code' and should_show(c) and not c.get('outputs'):
            first = next((l for l in ''.join(c['source']).splitlines() if l.strip()), '').strip()[:70]
            out.append(f'{path}: cell {i} shows something but has no saved output ({first})')
    return out


if __name__ == '__main__':
    paths = sys.argv[1:] or sorted(str(p.relative_to(ROOT)) for p in (ROOT / 'nbs').glob('*.ipynb'))
    found = [m for p in paths for m in problems(ROOT / p if not Path(p).is_absolute() else p)]
    print('\n'.join(found) or f'{len(paths)} notebooks: every showing cell has its saved output')
    sys.exit(1 if found else 0)
