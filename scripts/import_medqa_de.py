"""Take a German MedQA file the user supplies (medqa_de.source: file), check it and install it as
the MedQA-de benchmark data.

    python scripts/import_medqa_de.py --file my/medqa_de.jsonl --items 500 --out data/benchmarks/medqa_de.jsonl
"""

import argparse

from _cli import setup_logging
from definemed.evaluation.medqa import check_rows
from definemed.io import read_jsonl, write_jsonl

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--file", required=True)
p.add_argument("--items", type=int, default=None, help="refuse a file with another number of questions")
p.add_argument("--out", required=True)
args = p.parse_args()

rows = read_jsonl(args.file)
check_rows(rows, args.file)
if args.items is not None and len(rows) != args.items:
    raise SystemExit(f"{args.file}: {len(rows)} questions, but benchmarks.tasks.medqa_de.items is {args.items}")
write_jsonl(args.out, rows, sort_keys=True)
log.info("%d questions from %s -> %s", len(rows), args.file, args.out)
