"""MINIATURE ONLY: agreement of the LLM labels with the fixture's ground truth (Cohen's kappa,
accuracy, precision, recall). Reads the ground truth, which the pipeline itself never sees.
"""

import argparse

import numpy as np
import pyarrow.parquet as pq

from _cli import setup_logging
from definemed.io import write_json
from definemed.miniature.fixtures import read_truth

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--labels", required=True)
p.add_argument("--truth", nargs="+", required=True)
p.add_argument("--out", required=True)
args = p.parse_args()

from sklearn.metrics import (  # noqa: E402
    accuracy_score,
    cohen_kappa_score,
    precision_score,
    recall_score,
)

labels = pq.read_table(args.labels, columns=["id", "label"])
is_medical = read_truth(args.truth)
y_pred = np.array(labels.column("label").to_pylist(), dtype=int)
y_true = np.array([int(is_medical[i]) for i in labels.column("id").to_pylist()])
result = {
    "documents": int(len(y_true)),
    "true_medical": int(y_true.sum()),
    "labelled_medical": int(y_pred.sum()),
    "cohen_kappa": float(cohen_kappa_score(y_true, y_pred)),
    "accuracy": float(accuracy_score(y_true, y_pred)),
    "precision": float(precision_score(y_true, y_pred, zero_division=0)),
    "recall": float(recall_score(y_true, y_pred, zero_division=0)),
}
write_json(args.out, result)
log.info("kappa %.3f accuracy %.3f on %d documents", result["cohen_kappa"], result["accuracy"], result["documents"])
