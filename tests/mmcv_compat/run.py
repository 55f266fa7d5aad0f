"""Run mmcv 1.7.2's own Config and Registry tests against segnb.

    python tests/mmcv_compat/run.py /path/to/mmcv-checkout [pytest args...]

The checkout needs tests/test_utils/test_config.py, tests/test_utils/test_registry.py and tests/data/config/.
They are copied to a temporary folder (mmcv's tests write next to themselves), the `mmcv` package of this folder
(a thin map from mmcv's names to segnb's) is put first on sys.path, and pytest runs each file; the figures
printed at the end are passed/total per file."""
import os, shutil, subprocess, sys, tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = ('test_config.py', 'test_registry.py')

def copy_tests(checkout, dest):
    "Copy the two test files and their data into `dest` in mmcv's layout."
    tests = os.path.join(dest, 'tests')
    os.makedirs(os.path.join(tests, 'test_utils'))
    for name in FILES: shutil.copy(os.path.join(checkout, 'tests', 'test_utils', name), os.path.join(tests, 'test_utils'))
    shutil.copytree(os.path.join(checkout, 'tests', 'data', 'config'), os.path.join(tests, 'data', 'config'))

def run_file(root, name, extra):
    "Run one test file with pytest from `root` (mmcv's tests open some files relative to it); return (passed, total)."
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.environ.get('PYTHONPATH', '')]))
    report = os.path.join(root, name + '.xml')
    cmd = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-rfE', f'tests/test_utils/{name}',
           f'--junitxml={report}', *extra]
    subprocess.run(cmd, cwd=root, env=env)
    suite = ET.parse(report).getroot()
    suite = suite.find('testsuite') if suite.tag == 'testsuites' else suite
    total = int(suite.get('tests'))
    return total - int(suite.get('failures')) - int(suite.get('errors')) - int(suite.get('skipped')), total

def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv: sys.exit(__doc__)
    checkout, extra = argv[0], argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        copy_tests(checkout, tmp)
        figures = {name: run_file(tmp, name, extra) for name in FILES}
    for name, (passed, total) in figures.items(): print(f'{name}: {passed}/{total} passed')

if __name__ == '__main__':
    main()
