"mmcv.utils' names, served by segnb."
from segnb.cli import DictAction
from segnb.config import Config, ConfigDict
from segnb.registry import Registry, build_from_cfg
