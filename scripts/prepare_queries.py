"""A seeded sample of a query file: MedAlpaca rows {id, question, answer} (to be translated), or a
German query file the user supplies {id, query, context} (used as it is).

    python scripts/prepare_queries.py --input data/medalpaca/source.jsonl --kind medalpaca \
        --sample-size 500 --seed 42 --out results/medalpaca/sample_en.jsonl
"""

import argparse

from _cli import setup_logging
from definemed.io import read_jsonl, write_jsonl
from definemed.judges.generation import check_queries, sample_rows

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--input", required=True)
p.add_argument("--kind", choices=["medalpaca", "queries"], required=True)
p.add_argument("--sample-size", type=int, required=True)
p.add_argument("--seed", type=int, required=True)
p.add_argument("--context", choices=["answer", "none"], default="answer")
p.add_argument("--out", required=True)
args = p.parse_args()

rows = read_jsonl(args.input)
if args.kind == "queries":
    rows = check_queries(rows)
    if args.context == "none":
        rows = [{**r, "context": ""} for r in rows]
sample = sample_rows(rows, args.sample_size, args.seed)
write_jsonl(args.out, sample)
log.info("%d of %d rows (seed %d) -> %s", len(sample), len(rows), args.seed, args.out)
