"""How much of mmseg 0.30's model zoo segnb builds exactly: python tools/zoo_count.py [--family F ...] [--missing]

For every leaf config of mmseg 0.30's configs/ that mmseg itself builds (recorded in
tests/fixtures/zoo/mmseg_zoo.json.gz by make_zoo_fixtures.py), segnb builds the same cfg.model on the meta device and
its state_dict names and shapes are compared with mmseg's. Prints one line per family and the totals (CNN families,
all families); --missing also lists each config that does not match, with the reason."""
import argparse, collections, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'tests' / 'fixtures' / 'zoo'))
from zoo_check import CNN_FAMILIES, load_records, same_shapes

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--family', nargs='*', help='only these configs/ folders')
    p.add_argument('--missing', action='store_true', help='list the configs that do not match, with the reason')
    args = p.parse_args(argv)
    records = load_records()['configs']
    counts = collections.defaultdict(lambda: [0, 0])
    for name, rec in sorted(records.items()):
        if 'sha' not in rec or (args.family and rec['family'] not in args.family): continue
        ok, why = same_shapes(rec)
        counts[rec['family']][0] += ok; counts[rec['family']][1] += 1
        if args.missing and not ok: print(f'  {name}: {why}')
    for fam, (ok, n) in sorted(counts.items()):
        print(f'{fam:16s} {ok:4d} / {n:<4d} {"cnn" if fam in CNN_FAMILIES else "transformer"}')
    for label, fams in (('CNN families', CNN_FAMILIES), ('all families', list(counts))):
        ok, n = (sum(counts[f][i] for f in fams if f in counts) for i in (0, 1))
        print(f'{label}: {ok} of {n} configs that mmseg 0.30 builds build identically in segnb ({100 * ok / max(n, 1):.1f}%)')

if __name__ == '__main__': main()
