"""Documents and words of FineMed-de and FineWeb2-de (paper Table 2, lower part).

    python scripts/corpus_statistics.py --finemed results/finemed/*.parquet --scores results/scores/*.parquet \
        --out results/finemed/statistics.json
"""

import argparse

from _cli import setup_logging
from definemed.dataset.corpus import corpus_statistics
from definemed.io import write_json

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--finemed", nargs="+", required=True)
p.add_argument("--scores", nargs="+", required=True)
p.add_argument("--out", required=True)
args = p.parse_args()

stats = corpus_statistics(args.finemed, args.scores)
write_json(args.out, stats)
log.info("FineMed-de: %s; FineWeb2-de: %s", stats["FineMed-de"], stats["FineWeb2-de"])
