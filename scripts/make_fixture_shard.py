"""Write one seeded fixture shard in FineWeb2's schema plus its ground truth (miniature, tests).

    python scripts/make_fixture_shard.py --seed 1234 --index 0 --documents 1500 \
        --out miniature/data/fineweb2/train-000_00000.parquet \
        --truth miniature/data/fixture_truth/train-000_00000.parquet
"""

import argparse

from _cli import setup_logging
from definemed.io import write_parquet
from definemed.miniature.fixtures import fixture_shard

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--seed", type=int, required=True)
p.add_argument("--index", type=int, required=True)
p.add_argument("--documents", type=int, required=True)
p.add_argument("--medical-share", type=float, default=0.3)
p.add_argument("--hard-negative-share", type=float, default=0.05)
p.add_argument("--out", required=True)
p.add_argument("--truth", required=True)
args = p.parse_args()

shard, truth = fixture_shard(args.seed, args.index, args.documents, args.medical_share, args.hard_negative_share)
write_parquet(args.truth, truth)
write_parquet(args.out, shard)
log.info("%s: %d documents, %d medical", args.out, shard.num_rows, sum(truth.column("is_medical").to_pylist()))
