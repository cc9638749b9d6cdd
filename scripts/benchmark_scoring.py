"""Benchmark: classifier scoring throughput and padding, with and without length sorting.

    python scripts/benchmark_scoring.py --model miniature/results/classifier/model \
        --shard miniature/data/fineweb2/train-000_00000.parquet --max-length 256 --max-tokens-per-batch 8192
Prints documents/s, tokens/s and the padding share (padded positions that hold no token) for
both batch orders, and the device. Run on a GPU with the paper's settings (512, 65536).
"""

import argparse
import time

import pyarrow.parquet as pq

from _cli import setup_logging
from definemed.dataset.classifier import Scorer

setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--model", required=True)
p.add_argument("--shard", required=True, nargs="+")
p.add_argument("--max-length", type=int, default=512)
p.add_argument("--max-tokens-per-batch", type=int, default=65536)
p.add_argument("--documents", type=int, default=None, help="first N documents of the shard")
p.add_argument("--threads", type=int, default=None)
p.add_argument("--pad-multiple", type=int, default=None, help="round batch widths up (default: 64 on GPU, 1 on CPU)")
args = p.parse_args()

import torch  # noqa: E402

if args.threads:
    torch.set_num_threads(args.threads)
texts = [t for shard in args.shard for t in pq.read_table(shard, columns=["text"]).column("text").to_pylist()]
texts = texts[: args.documents]
print(
    f"device={'cuda:' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}"
    f" threads={torch.get_num_threads()} documents={len(texts)} max_length={args.max_length}"
    f" max_tokens_per_batch={args.max_tokens_per_batch}"
)
for sort in (False, True):
    scorer = Scorer(args.model, args.max_length, args.max_tokens_per_batch, pad_multiple=args.pad_multiple)
    scorer.score(texts, sort)  # warm-up: a GPU meets every batch shape once (kernel selection) before timing
    scorer.stats = {"documents": 0, "tokens": 0, "padded_tokens": 0}
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    scorer.score(texts, sort)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    s = time.perf_counter() - start
    st = scorer.stats
    print(
        f"length_sorted={sort!s:5} seconds={s:.2f} docs_per_s={st['documents'] / s:.1f}"
        f" pad_multiple={scorer.pad_multiple} tokens_per_s={st['tokens'] / s:.0f}"
        f" padding_share={1 - st['tokens'] / st['padded_tokens']:.3f}"
    )
