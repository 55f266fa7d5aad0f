"""Packaging for segnb: everything is read from settings.ini, as nbdev 2 projects do."""
from configparser import ConfigParser
from pathlib import Path

import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').split()
loggers_requirements = cfg.get('loggers_requirements', '').split()   # WandbLoggerHook, MlflowLoggerHook
export_requirements = cfg.get('export_requirements', '').split()     # segnb.tools.pytorch2onnx
console_scripts = cfg.get('console_scripts', '').split()

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=Path('README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    author=cfg['author'],
    author_email=cfg['author_email'],
    license='Apache-2.0',
    url=cfg['git_url'],
    keywords=cfg['keywords'].split(),
    python_requires='>=' + cfg['min_python'],
    packages=setuptools.find_packages(include=['segnb', 'segnb.*']),
    include_package_data=True,
    package_data={'segnb': ['configs/**/*.py', 'configs/*.py', 'model_zoo/*.json']},
    install_requires=requirements,
    extras_require={'dev': dev_requirements, 'loggers': loggers_requirements, 'export': export_requirements},
    entry_points={
        'console_scripts': console_scripts,
        'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
    zip_safe=False,
)
