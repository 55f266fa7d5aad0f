"The part of mmcv.fileio that mmcv's config tests use: `dump` and `load` of json, yaml and pickle files."
import json, os, pickle
import yaml

_TEXT = {'json': (json.loads, json.dumps), 'yaml': (yaml.safe_load, yaml.dump), 'yml': (yaml.safe_load, yaml.dump)}

def _format(file, file_format):
    return file_format or os.path.splitext(os.fspath(file))[1][1:]

def load(file, file_format=None):
    "The object stored in `file` (.json, .yaml/.yml or .pkl)."
    fmt = _format(file, file_format)
    if fmt == 'pkl':
        with open(file, 'rb') as f: return pickle.load(f)
    with open(file) as f: return _TEXT[fmt][0](f.read())

def dump(obj, file=None, file_format=None):
    "Write `obj` to `file` (.json, .yaml/.yml or .pkl); with no file, return the json/yaml text."
    fmt = _format(file, file_format)
    if fmt == 'pkl':
        if file is None: return pickle.dumps(obj)
        with open(file, 'wb') as f: pickle.dump(obj, f)
        return
    text = _TEXT[fmt][1](obj)
    if file is None: return text
    with open(file, 'w') as f: f.write(text)
