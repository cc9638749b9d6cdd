"""Score the LLM's labels against the annotators' majority: Table 5 and inter-annotator kappa
(paper A.1.1).

    python scripts/evaluate_labels.py --key results/labels/annotation/key.csv \
        --out results/labels/label_validation.json data/annotations/annotator-*.csv
"""

import argparse
import csv

from _cli import setup_logging
from definemed.dataset.annotation import read_annotations, validation_metrics
from definemed.io import write_json

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("annotations", nargs="+", help="filled annotation CSVs, one per annotator")
p.add_argument("--key", required=True)
p.add_argument("--out", required=True)
p.add_argument("--simulated", action="store_true", help="the annotators are simulated (miniature)")
args = p.parse_args()

with open(args.key, newline="", encoding="utf-8") as f:
    key = {row["item"]: int(row["llm_label"]) for row in csv.DictReader(f)}
sheets = [read_annotations(path, list(key)) for path in args.annotations]
metrics = validation_metrics(key, sheets)
metrics["simulated_annotators"] = args.simulated
metrics["annotation_files"] = args.annotations
write_json(args.out, metrics)
log.info(
    "precision %.3f recall %.3f F1 %.3f accuracy %.3f, Fleiss kappa %s",
    metrics["precision"],
    metrics["recall"],
    metrics["f1"],
    metrics["accuracy"],
    metrics["fleiss_kappa"],
)
