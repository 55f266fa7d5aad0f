"""K-Net (mmseg 0.30's configs/knet): the configs build with mmseg's names and shapes, and the recorded PSPNet K-Net
gives mmseg's logits for the same weights. Imports the K-Net module itself, so it runs before the models package does."""
import sys
from pathlib import Path
import pytest
import segnb.models
import segnb.models.decode_heads.knet_head  # noqa: F401  (registers IterativeDecodeHead, KernelUpdateHead, KernelUpdator)
from segnb.registry import MODELS
try: import segnb.models.backbones.swin  # noqa: F401  (the Swin configs' backbone, where segnb has it)
except ImportError: pass

sys.path.insert(0, str(Path(__file__).parent / 'fixtures' / 'zoo'))
from zoo_check import load_records, same_shapes, logits_difference

RECORDS = load_records()
CONFIGS = sorted(k for k, r in RECORDS['configs'].items() if 'sha' in r and r['family'] == 'knet')

def needs_swin(config): return RECORDS['configs'][config]['model']['backbone']['type'] == 'SwinTransformer'

@pytest.mark.parametrize('config', CONFIGS)
def test_knet_builds_with_mmseg_names_and_shapes(config):
    if needs_swin(config) and 'SwinTransformer' not in MODELS: pytest.skip('needs the SwinTransformer backbone')
    ok, why = same_shapes(RECORDS['configs'][config])
    assert ok, why

def test_knet_logits_match_mmseg():
    rec = RECORDS['logits']['knet']
    assert logits_difference(rec, RECORDS['configs'][rec['config']]['model']) <= 1e-4
