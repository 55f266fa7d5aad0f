"A stand-in for the `mmcv` package that maps mmcv 1.7's config and registry names to segnb's (for run.py only)."
from .utils import Config, ConfigDict, DictAction, Registry, build_from_cfg
from .fileio import dump, load
