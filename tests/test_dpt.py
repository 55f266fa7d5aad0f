"DPT against mmseg 0.30: the recorded logits of dpt_vit-b16_512x512_160k_ade20k, at the recorded size and at 96x64."
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent / 'fixtures' / 'zoo'))
import pytest
import segnb.models.backbones.vit, segnb.models.decode_heads.dpt_head
from zoo_check import load_records, load_size_records, logits_difference

@pytest.mark.parametrize('records', [lambda: load_records()['logits'], load_size_records], ids=['square', '96x64'])
def test_dpt_logits(records):
    rec = records()['dpt']
    assert logits_difference(rec, load_records()['configs'][rec['config']]['model']) <= 1e-4
