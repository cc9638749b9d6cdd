"""Export a blinded annotation sample of the LLM labels, one CSV per annotator (paper A.1.1).

    python scripts/export_annotation_sample.py --labels results/labels/llm_labels.parquet \
        --sample results/labels/sample.parquet --medical 100 --other 100 --annotators 3 --seed 42 \
        --out-dir results/labels/annotation
Hand out annotator-<k>.csv; key.csv (ids and LLM labels) stays with the workflow.
"""

import argparse

import pyarrow.parquet as pq

from _cli import setup_logging
from definemed.dataset.annotation import select_items, write_annotation_sheets

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--labels", required=True)
p.add_argument("--sample", required=True)
p.add_argument("--medical", type=int, required=True)
p.add_argument("--other", type=int, required=True)
p.add_argument("--annotators", type=int, required=True)
p.add_argument("--seed", type=int, required=True)
p.add_argument("--out-dir", required=True)
args = p.parse_args()

items = select_items(
    pq.read_table(args.labels),
    pq.read_table(args.sample, columns=["id", "text"]),
    args.medical,
    args.other,
    args.seed,
)
paths = write_annotation_sheets(items, args.out_dir, args.annotators)
log.info("%d items for %d annotators -> %s", items.num_rows, len(paths), args.out_dir)
