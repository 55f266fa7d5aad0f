"""Write README.md from nbs/index.ipynb with nbconvert's markdown export (Quarto, which `nbdev_readme` needs, is optional).

`python tools/make_readme.py` writes README.md; `--check` exits 1 when README.md is not what index.ipynb makes.
"""
import sys
from pathlib import Path

import nbformat
from nbconvert import MarkdownExporter

ROOT = Path(__file__).resolve().parent.parent


def is_hidden(cell):
    "Cells marked `#| hide` (or `#| include: false`) stay out of the README, as they do in nbdev's docs."
    first_lines = cell.source.splitlines()[:5]
    return any(l.replace(' ', '') in ('#|hide', '#|include:false') for l in first_lines)


def strip_directives(source):
    "Drop `#| ...` directive lines from a code cell."
    return '\n'.join(l for l in source.splitlines() if not l.lstrip().startswith('#|'))


def readme_text():
    "The markdown README.md should hold."
    nb = nbformat.read(ROOT / 'nbs' / 'index.ipynb', as_version=4)
    nb.cells = [c for c in nb.cells if not is_hidden(c)]
    for c in nb.cells:
        if c.cell_type == 'code': c.source = strip_directives(c.source)
    body, _ = MarkdownExporter(exclude_output_prompt=True, exclude_input_prompt=True).from_notebook_node(nb)
    header = '<!-- This file is made from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n'
    return header + body.strip() + '\n'


def main(argv):
    path, text = ROOT / 'README.md', readme_text()
    if '--check' in argv:
        if not path.exists() or path.read_text(encoding='utf-8') != text:
            print('README.md is not what nbs/index.ipynb makes: run `python tools/make_readme.py`', file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding='utf-8')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
