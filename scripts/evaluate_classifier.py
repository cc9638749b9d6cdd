"""Choose the decision threshold and measure the classifier on the test split (paper A.2, Fig. 4).

    python scripts/evaluate_classifier.py --model results/classifier/model --test results/labels/test.parquet \
        --validation results/classifier/validation_scores.parquet --settings '<classifier section>' \
        --out-metrics results/classifier/metrics.json --out-curve results/classifier/threshold_curve.json
"""

import argparse

import numpy as np
import pyarrow.parquet as pq

from _cli import setup_logging
from definemed.dataset.classifier import (
    ClassifierSettings,
    Scorer,
    choose_threshold,
    fbeta,
    precision_recall,
    threshold_curve,
)
from definemed.io import write_json

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--model", required=True)
p.add_argument("--test", required=True)
p.add_argument("--validation", required=True)
p.add_argument("--settings", required=True)
p.add_argument("--out-metrics", required=True)
p.add_argument("--out-curve", required=True)
args = p.parse_args()

settings = ClassifierSettings.from_json(args.settings)
val = pq.read_table(args.validation)
chosen = choose_threshold(
    settings.threshold,
    np.array(val.column("label").to_pylist()),
    np.array(val.column("score").to_pylist()),
)
test = pq.read_table(args.test)
labels = np.array(test.column("label").to_pylist())
scores = Scorer(args.model, settings.max_length, settings.max_tokens_per_batch).score(test.column("text").to_pylist())
precision, recall = precision_recall(labels, scores, chosen["threshold"])
metrics = {
    "split": "test",
    "documents": int(len(labels)),
    "medical": int(labels.sum()),
    **chosen,
    "precision": precision,
    "recall": recall,
    "f1": fbeta(precision, recall, 1.0),
    f"f{settings.fbeta}": fbeta(precision, recall, settings.fbeta),
}
write_json(args.out_metrics, metrics)
write_json(
    args.out_curve,
    {"split": "test", "chosen_threshold": chosen["threshold"], **threshold_curve(labels, scores)},
)
log.info(
    "threshold %.3f (%s): precision %.3f recall %.3f on %d test documents",
    chosen["threshold"],
    chosen["rule"],
    precision,
    recall,
    len(labels),
)
