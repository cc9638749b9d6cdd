"""Held-out medical perplexity of a CPT checkpoint and of its base (the miniature's check that CPT
learned something; paper 4.2). Held-out documents are the seeded fraction pack_corpus left out.

    python scripts/heldout_perplexity.py --base models/qwen2.5-7b-instruct --cpt models/definemed-qwen2.5-7b \
        --seed 42 --heldout-fraction 0.001 --max-length 4096 --out results/cpt/definemed-qwen2.5-7b/perplexity.json \
        results/finemed/*.parquet
"""

import argparse

import pyarrow.parquet as pq

from _cli import set_torch_threads, setup_logging
from definemed.corpus import is_heldout
from definemed.cpt import heldout_nll
from definemed.io import write_json

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("parts", nargs="+")
p.add_argument("--base", required=True)
p.add_argument("--cpt", required=True)
p.add_argument("--seed", type=int, required=True)
p.add_argument("--heldout-fraction", type=float, required=True)
p.add_argument("--max-length", type=int, required=True)
p.add_argument("--max-documents", type=int, default=2000)
p.add_argument("--out", required=True)
p.add_argument("--threads", type=int, default=None)
args = p.parse_args()

set_torch_threads(args.threads)
texts = []
for part in args.parts:
    t = pq.read_table(part, columns=["id", "text"])
    texts += [
        x
        for i, x in zip(t.column("id").to_pylist(), t.column("text").to_pylist())
        if is_heldout(args.seed, i, args.heldout_fraction)
    ]
texts = texts[: args.max_documents]
if not texts:
    raise SystemExit(f"no held-out documents at fraction {args.heldout_fraction}; raise cpt.heldout_fraction")
result = {
    "documents": len(texts),
    "base": heldout_nll(args.base, texts, args.max_length),
    "cpt": heldout_nll(args.cpt, texts, args.max_length),
}
result["perplexity_ratio"] = result["cpt"]["perplexity"] / result["base"]["perplexity"]
write_json(args.out, result)
log.info(
    "held-out perplexity: base %.2f -> CPT %.2f on %d documents",
    result["base"]["perplexity"],
    result["cpt"]["perplexity"],
    len(texts),
)
