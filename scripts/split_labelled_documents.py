"""Split the labelled sample into train and test sets and count documents and words per class
(paper 3.2, Table 2).

    python scripts/split_labelled_documents.py --labels results/labels/llm_labels.parquet \
        --sample results/labels/sample.parquet --test-fraction 0.1 --seed 42 \
        --train results/labels/train.parquet --test results/labels/test.parquet \
        --stats results/labels/split_stats.json
"""

import argparse

import pyarrow.parquet as pq

from _cli import setup_logging
from definemed.dataset.splits import join_labels, split, split_statistics
from definemed.io import write_json, write_parquet

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--labels", required=True)
p.add_argument("--sample", required=True)
p.add_argument("--test-fraction", type=float, required=True)
p.add_argument("--seed", type=int, required=True)
p.add_argument("--stratify", action="store_true")
p.add_argument("--train", required=True)
p.add_argument("--test", required=True)
p.add_argument("--stats", required=True)
args = p.parse_args()

table = join_labels(pq.read_table(args.labels), pq.read_table(args.sample, columns=["id", "text"]))
train, test = split(table, args.test_fraction, args.seed, args.stratify)
meta = {"seed": args.seed, "test_fraction": args.test_fraction, "stratify": args.stratify}
write_parquet(args.train, train, metadata=meta)
write_parquet(args.test, test, metadata=meta)
stats = split_statistics({"test": test, "train": train})
write_json(args.stats, {**meta, **stats})
log.info("train %d / test %d documents", train.num_rows, test.num_rows)
