"""The sheet for Table 6: the documents the LLM labelled medical and the annotators' majority did
not, with an empty `kind` column to name what each one is (paper 3.2, A.1.1). In the miniature
(--truth) the kinds are filled from the fixture's ground truth (each document's topic).

    python scripts/false_positive_sheet.py --key results/labels/annotation/key.csv \
        --sample results/labels/sample.parquet --out results/labels/annotation/false_positives.csv \
        results/labels/annotation/annotator-*.csv
"""

import argparse
import csv

import pyarrow.parquet as pq

from _cli import setup_logging
from definemed.dataset.annotation import KIND_COLUMN, false_positives, read_annotations, write_csv

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("annotations", nargs="+", help="filled annotation CSVs, one per annotator")
p.add_argument("--key", required=True)
p.add_argument("--sample", required=True, help="the labelled sample (id, text)")
p.add_argument("--truth", nargs="*", default=[], help="miniature: fixture ground truth, whose topic fills the kind")
p.add_argument("--out", required=True)
args = p.parse_args()

with open(args.key, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
key = {row["item"]: int(row["llm_label"]) for row in rows}
ids = {row["item"]: row["id"] for row in rows}
sheets = [read_annotations(path, list(key)) for path in args.annotations]
items = false_positives(key, sheets)
sample = pq.read_table(args.sample, columns=["id", "text"])
text_of = dict(zip(sample.column("id").to_pylist(), sample.column("text").to_pylist()))
kind_of = {}
for path in args.truth:
    truth = pq.read_table(path, columns=["id", "topic"])
    kind_of.update(zip(truth.column("id").to_pylist(), truth.column("topic").to_pylist()))
write_csv(
    args.out,
    ["item", "id", "text", KIND_COLUMN],
    ((i, ids[i], text_of[ids[i]], kind_of.get(ids[i], "")) for i in items),
)
log.info("%d false positives of %d LLM-medical items -> %s", len(items), sum(key.values()), args.out)
