"""MINIATURE ONLY: fill annotation sheets from the fixture's ground truth with a small error rate,
standing in for the paper's three human annotators. The files say 'simulated' in name and column.
"""

import argparse
import csv
from pathlib import Path

from _cli import setup_logging
from definemed.dataset.annotation import ANSWER_COLUMN, simulate_annotator, write_csv
from definemed.miniature.fixtures import read_truth

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--key", required=True)
p.add_argument("--truth", nargs="+", required=True, help="fixture ground-truth parquet files")
p.add_argument("--error-rate", type=float, required=True)
p.add_argument("--seed", type=int, required=True)
p.add_argument("--out", nargs="+", required=True, help="one CSV per simulated annotator")
args = p.parse_args()

is_medical = read_truth(args.truth)
with open(args.key, newline="", encoding="utf-8") as f:
    key = list(csv.DictReader(f))
items = [row["item"] for row in key]
truth_by_item = {row["item"]: is_medical[row["id"]] for row in key}
for a, out in enumerate(args.out, start=1):
    answers = simulate_annotator(truth_by_item, items, args.error_rate, seed=args.seed * 100 + a)
    write_csv(
        Path(out),
        ["item", ANSWER_COLUMN, "simulated"],
        ((i, "yes" if answers[i] else "no", "true") for i in items),
    )
log.info("simulated %d annotators on %d items", len(args.out), len(items))
