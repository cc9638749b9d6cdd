"""Draw a seeded uniform sample of documents across FineWeb2 shards (paper 3.2).

python scripts/sample_documents.py --n 260000 --seed 42 --out results/labels/sample.parquet \
        data/fineweb2/*.parquet
"""

import argparse

from _cli import setup_logging
from definemed.dataset.fineweb import sample_documents, write_sample

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("shards", nargs="+")
p.add_argument("--n", type=int, required=True)
p.add_argument("--seed", type=int, required=True)
p.add_argument("--out", required=True)
args = p.parse_args()

table = sample_documents(args.shards, args.n, args.seed)
write_sample(args.out, table, args.seed, args.shards)
log.info("sampled %d documents from %d shards -> %s", table.num_rows, len(args.shards), args.out)
