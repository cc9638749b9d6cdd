"""Miniature: write the German query file a user would supply for MedAlpaca-de, from the fixture's
medical facts (definemed/miniature/fixture_text.yaml).

    python scripts/make_fixture_queries.py --out miniature/data/medalpaca/fixture_queries.jsonl
"""

import argparse

from _cli import setup_logging
from definemed.io import write_jsonl
from definemed.miniature.benchmark_fixtures import fixture_queries

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--out", required=True)
args = p.parse_args()

rows = fixture_queries()
write_jsonl(args.out, rows)
log.info("%d fixture queries -> %s", len(rows), args.out)
