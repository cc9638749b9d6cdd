"""Tokenise a corpus with a model's tokenizer and pack it into fixed-length sequences (paper A.3).

    python scripts/pack_corpus.py --tokenizer models/qwen2.5-7b-instruct --length 4096 --seed 42 \
        --heldout-fraction 0.001 --out results/packed/definemed-qwen2.5-7b results/finemed/*.parquet
Held-out documents (a seeded fraction, by id) are left out; they measure perplexity later.
"""

import argparse

import pyarrow.parquet as pq

from _cli import setup_logging
from definemed.dataset.corpus import is_heldout
from definemed.io import atomic_dir
from definemed.training.packing import pack_corpus

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("parts", nargs="+", help="parquet files with id and text")
p.add_argument("--tokenizer", required=True)
p.add_argument("--length", type=int, required=True)
p.add_argument("--seed", type=int, required=True)
p.add_argument("--heldout-fraction", type=float, default=0.0)
p.add_argument("--window-documents", type=int, default=100_000)
p.add_argument("--out", required=True)
args = p.parse_args()

from transformers import AutoTokenizer  # noqa: E402

tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
heldout = {
    i
    for part in args.parts
    for i in pq.read_table(part, columns=["id"]).column("id").to_pylist()
    if is_heldout(args.seed, i, args.heldout_fraction)
}
with atomic_dir(args.out) as tmp:
    stats = pack_corpus(args.parts, tokenizer, args.length, tmp, args.window_documents, exclude=heldout)
log.info(
    "%d documents -> %d sequences of %d; padding %.2f%%; %d documents cut (concatenate-and-chop: %d)",
    stats["documents"],
    stats["sequences"],
    args.length,
    100 * stats["padding_share"],
    stats["documents_cut"],
    stats["chop_documents_cut"],
)
