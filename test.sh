#!/usr/bin/env bash
# Every check segnb has, in the order a failure is cheapest to find:
# the library is what the notebooks export, the notebooks are clean, README.md is current,
# every notebook runs top to bottom, every notebook renders to HTML, and the pytest suite passes
# (tests/test_docs.py opens a rendered page in headless Chromium).
set -euo pipefail
cd "$(dirname "$0")"

echo "== nbdev_export: segnb/ must be what nbs/ exports"
nbdev_export
if [ -n "$(git status --porcelain -- segnb)" ]; then
  echo "segnb/ is out of sync with nbs/ (edit the notebooks, run nbdev_export, commit both):"
  git status --porcelain -- segnb
  exit 1
fi

echo "== nbdev_clean: notebooks carry no execution noise"
nbdev_clean
if [ -n "$(git status --porcelain -- nbs)" ]; then
  echo "notebooks are not clean (run nbdev_clean and commit):"
  git status --porcelain -- nbs
  exit 1
fi

echo "== README.md is made from nbs/index.ipynb"
python tools/make_readme.py --check

echo "== nbdev_test: every notebook, top to bottom, each in a fresh process (as each gets its own kernel in JupyterLab)"
# nbdev's own test_nb, with nbdev_test's flags, in one forked process per notebook: a lesson's cells and the exported
# module register the same classes, so notebooks never share a process; the fork skips the five seconds of importing
# torch and IPython that a new Python spends before the first cell (see tools/run_notebooks.py). Two at a time.
time python tools/run_notebooks.py -j 2

echo "== docs: every notebook renders to HTML from its saved outputs (nbconvert stands in for quarto)"
rm -rf _docs/html && mkdir -p _docs/html
# two nbconvert processes, each over half of the notebooks (one HTML page takes about a second)
n=$(( ($(ls nbs/*.ipynb | wc -l) + 1) / 2 ))
ls nbs/*.ipynb | xargs -P 2 -n "$n" jupyter nbconvert --to html --log-level WARN --output-dir _docs/html
test "$(ls _docs/html/*.html | wc -l)" -eq "$(ls nbs/*.ipynb | wc -l)"

echo "== pytest (two workers: most tests keep one core busy)"
python -m pytest -q -n 2 tests
