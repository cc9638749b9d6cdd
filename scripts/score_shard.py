"""Score every document of one FineWeb2 shard with the medical classifier (paper 3.3).

    python scripts/score_shard.py --model results/classifier/model --shard data/fineweb2/train-000_00000.parquet \
        --max-length 512 --max-tokens-per-batch 65536 --out results/scores/train-000_00000.parquet
Writes id, score (P(medical)) and word count; no copy of the text.
"""

import argparse
import time

from _cli import set_torch_threads, setup_logging
from definemed.dataset.classifier import Scorer, score_shard
from definemed.dataset.fineweb import verify_shard
from definemed.io import write_parquet

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--model", required=True)
p.add_argument("--shard", required=True)
p.add_argument("--max-length", type=int, required=True)
p.add_argument("--max-tokens-per-batch", type=int, required=True)
p.add_argument("--read-documents", type=int, default=50_000)
p.add_argument("--out", required=True)
p.add_argument("--threads", type=int, default=None)
args = p.parse_args()

set_torch_threads(args.threads)
verify_shard(args.shard)
start = time.perf_counter()
scorer = Scorer(args.model, args.max_length, args.max_tokens_per_batch)
table = score_shard(scorer, args.shard, args.read_documents)
elapsed = time.perf_counter() - start
# no wall time in the result (it is in the log): the file is then the same bytes on every rerun
stats = dict(scorer.stats, device=scorer.device)
write_parquet(args.out, table, metadata=stats)
log.info(
    "%s: %d documents in %.1f s (%.0f docs/s, padding %.1f%%)",
    args.shard,
    table.num_rows,
    elapsed,
    table.num_rows / elapsed,
    100 * (1 - stats["tokens"] / max(1, stats["padded_tokens"])),
)
