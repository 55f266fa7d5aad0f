"""A rendered notebook page opens in a headless browser and shows its headings and pictures.

test.sh renders the notebooks into _docs/html (from the saved outputs, so 06_optim's page has its LR-schedule plots); when that
folder is missing this test renders 06_optim itself. Chromium is driven on the command line (--dump-dom,
--screenshot): no extra Python package needed.
"""
import os, os.path as osp, re, shutil, subprocess, sys, tempfile
import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAGE = '06_optim'
HEADINGS = ['Optimizers and learning-rate schedules', 'The schedules, plotted', 'What comes next']
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run', '--hide-scrollbars']


def chromium():
    "The chromium binary; fail in CI, skip elsewhere, when it is missing."
    exe = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    if exe is None:
        msg = 'chromium is not installed (Debian: apt-get install chromium chromium-driver); the rendered-docs check needs it'
        if os.environ.get('CI'): pytest.fail(msg)
        pytest.skip(msg)
    return exe


@pytest.fixture(scope='module')
def page(tmp_path_factory):
    "Path of the rendered page: from test.sh's _docs/html, else rendered (executed) here."
    built = osp.join(ROOT, '_docs', 'html', f'{PAGE}.html')
    if osp.isfile(built): return built
    out = tmp_path_factory.mktemp('html')
    env = dict(os.environ, SEGNB_WIDGETS='0')
    subprocess.run([sys.executable, '-m', 'jupyter', 'nbconvert', '--to', 'html', '--execute', '--output-dir', str(out),
                    osp.join(ROOT, 'nbs', f'{PAGE}.ipynb')], check=True, env=env, cwd=osp.join(ROOT, 'nbs'),
                   capture_output=True, timeout=300)
    return str(out / f'{PAGE}.html')


def run_chromium(*args, profile):
    "Run headless chromium with `args`; returns stdout."
    r = subprocess.run([chromium(), *FLAGS, f'--user-data-dir={profile}', *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f'chromium failed: {r.stderr[-2000:]}'
    return r.stdout


def test_page_shows_headings_and_pictures(page, tmp_path):
    dom = run_chromium('--dump-dom', f'file://{page}', profile=tmp_path / 'profile')
    headings = [re.sub(r'<[^>]+>|¶', '', h).strip() for h in re.findall(r'<h[12][^>]*>(.*?)</h[12]>', dom, re.S)]
    for h in HEADINGS: assert h in headings, f'heading {h!r} missing; the page has {headings}'
    pngs = re.findall(r'<img[^>]+src="data:image/png;base64,([A-Za-z0-9+/=]{200,})"', dom)
    assert pngs, 'the rendered page has no embedded PNG picture'


def test_page_screenshot(page, tmp_path):
    shot = tmp_path / 'page.png'
    run_chromium(f'--screenshot={shot}', '--window-size=1100,1600', f'file://{page}', profile=tmp_path / 'profile')
    from PIL import Image
    im = Image.open(shot).convert('L')
    test_w, test_h = im.size
    assert (test_w, test_h) == (1100, 1600)
    lo, hi = im.getextrema()
    assert hi - lo > 100, 'the screenshot is blank'
    if os.environ.get('SEGNB_KEEP_SCREENSHOT'): shutil.copy(shot, os.environ['SEGNB_KEEP_SCREENSHOT'])
