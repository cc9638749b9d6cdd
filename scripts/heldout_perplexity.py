"""Held-out perplexity of a CPT checkpoint and of its base, on medical and on general text (the
miniature's check that CPT learned from its corpus, and what it cost; paper 4.2). Held-out documents
are the seeded fraction pack_corpus left out: medical = held-out FineMed-de documents, general =
held-out documents of the given FineWeb2 shard that FineMed-de did not select.

    python scripts/heldout_perplexity.py --base models/qwen2.5-7b-instruct --cpt models/definemed-qwen2.5-7b \
        --seed 42 --heldout-fraction 0.001 --max-length 4096 --out results/cpt/definemed-qwen2.5-7b/perplexity.json \
        --general-shard data/fineweb2/train-000_00000.parquet results/finemed/*.parquet
"""

import argparse

import pyarrow.parquet as pq

from _cli import set_torch_threads, setup_logging
from definemed.dataset.corpus import is_heldout
from definemed.io import write_json
from definemed.training.cpt import heldout_nll

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("parts", nargs="+")
p.add_argument("--base", required=True)
p.add_argument("--cpt", required=True)
p.add_argument("--seed", type=int, required=True)
p.add_argument("--heldout-fraction", type=float, required=True)
p.add_argument("--max-length", type=int, required=True)
p.add_argument("--general-shard", required=True, help="a FineWeb2 shard: its held-out documents not in FineMed-de")
p.add_argument("--max-documents", type=int, default=2000)
p.add_argument("--out", required=True)
p.add_argument("--threads", type=int, default=None)
args = p.parse_args()

set_torch_threads(args.threads)
texts, finemed_ids = [], set()
for part in args.parts:
    t = pq.read_table(part, columns=["id", "text"])
    ids = t.column("id").to_pylist()
    finemed_ids.update(ids)
    texts += [x for i, x in zip(ids, t.column("text").to_pylist()) if is_heldout(args.seed, i, args.heldout_fraction)]
texts = texts[: args.max_documents]
ids = pq.read_table(args.general_shard, columns=["id"]).column("id").to_pylist()
general_rows = [
    row for row, i in enumerate(ids) if i not in finemed_ids and is_heldout(args.seed, i, args.heldout_fraction)
][: args.max_documents]
general = pq.read_table(args.general_shard, columns=["text"]).column("text").take(general_rows).to_pylist()
for name, found in (("FineMed-de", texts), (f"{args.general_shard} outside FineMed-de", general)):
    if not found:
        raise SystemExit(
            f"no held-out documents in {name} at fraction {args.heldout_fraction}; raise cpt.heldout_fraction"
        )


def compare(docs: list[str]) -> dict:
    out = {
        "documents": len(docs),
        "base": heldout_nll(args.base, docs, args.max_length),
        "cpt": heldout_nll(args.cpt, docs, args.max_length),
    }
    out["perplexity_ratio"] = out["cpt"]["perplexity"] / out["base"]["perplexity"]
    return out


# the medical comparison at the top level (as before), the general one beside it
result = {**compare(texts), "general": {"source": "fineweb2 shard outside FineMed-de", **compare(general)}}
write_json(args.out, result)
log.info(
    "held-out perplexity: medical base %.2f -> CPT %.2f on %d documents; general base %.2f -> CPT %.2f on %d",
    result["base"]["perplexity"],
    result["cpt"]["perplexity"],
    len(texts),
    result["general"]["base"]["perplexity"],
    result["general"]["cpt"]["perplexity"],
    len(general),
)
