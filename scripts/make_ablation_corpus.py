"""A random FineWeb2-de sample as large as FineMed-de in tokens of a named tokenizer (paper A.5),
and the share of it the classifier calls medical.

    python scripts/make_ablation_corpus.py --tokenizer models/qwen2.5-7b-instruct \
        --finemed results/finemed/*.parquet --shards data/fineweb2/*.parquet --scores results/scores/*.parquet \
        --metrics results/classifier/metrics.json --corpus-stats results/finemed/statistics.json --seed 42 \
        --out results/ablation/fineweb2_random.parquet --out-stats results/ablation/statistics.json
"""

import argparse

from _cli import setup_logging
from definemed.dataset.corpus import finemed_tokens, token_matched_sample
from definemed.io import read_json, write_json, write_parquet

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--tokenizer", required=True)
p.add_argument("--finemed", nargs="+", required=True)
p.add_argument("--shards", nargs="+", required=True)
p.add_argument("--scores", nargs="+", required=True)
p.add_argument("--metrics", required=True)
p.add_argument("--corpus-stats", required=True)
p.add_argument("--seed", type=int, required=True)
p.add_argument("--margin", type=float, default=1.2, help="over-draw factor of the first streaming pass")
p.add_argument("--out", required=True)
p.add_argument("--out-stats", required=True)
args = p.parse_args()

from transformers import AutoTokenizer  # noqa: E402

tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
target_tokens, target_words = finemed_tokens(tokenizer, args.finemed)
total_words = read_json(args.corpus_stats)["FineWeb2-de"]["words"]
threshold = read_json(args.metrics)["threshold"]
sample, stats = token_matched_sample(
    tokenizer,
    args.shards,
    args.scores,
    target_tokens,
    target_words,
    total_words,
    args.seed,
    threshold,
    args.margin,
)
stats["tokenizer"] = args.tokenizer
write_parquet(args.out, sample, metadata=stats)
write_json(args.out_stats, stats)
log.info(
    "%d documents, %d tokens (target %d); classifier calls %.1f%% medical",
    stats["documents"],
    stats["tokens"],
    target_tokens,
    100 * stats["medical_share"],
)
