"""Benchmark: tokenise-and-pack throughput on CPU, and padding / documents cut against
concatenate-and-chop.

    python scripts/benchmark_packing.py --tokenizer miniature/models/tiny-qwen2.5-7b-instruct \
        --length 1024 miniature/results/finemed/*.parquet
"""

import argparse
import tempfile
import time

from _cli import setup_logging
from definemed.training.packing import pack_corpus

setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("parts", nargs="+")
p.add_argument("--tokenizer", required=True)
p.add_argument("--length", type=int, default=4096)
p.add_argument("--window-documents", type=int, default=100_000)
args = p.parse_args()

from transformers import AutoTokenizer  # noqa: E402

tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    s = pack_corpus(args.parts, tokenizer, args.length, tmp, args.window_documents)
    seconds = time.perf_counter() - start
print(
    f"documents={s['documents']} tokens={s['tokens']} sequences={s['sequences']} length={args.length}"
    f" seconds={seconds:.2f} tokens_per_s={s['tokens'] / seconds:.0f} padding_share={s['padding_share']:.4f}"
    f" documents_cut={s['documents_cut']} chop_documents_cut={s['chop_documents_cut']}"
)
