"""Continually pre-train an instruct model on a packed corpus (paper 4.2, A.3).

    accelerate launch --config_file accelerate/fsdp_hybrid.yaml scripts/train_cpt.py \
        --packed results/packed/definemed-qwen2.5-7b --base models/qwen2.5-7b-instruct \
        --settings '<cpt section as JSON>' --seed 42 --work-dir work/cpt/definemed-qwen2.5-7b \
        --out models/definemed-qwen2.5-7b --out-log results/cpt/definemed-qwen2.5-7b/training_log.jsonl \
        --out-summary results/cpt/definemed-qwen2.5-7b/summary.json
Rerun the same command after a kill: it continues from the last complete checkpoint in --work-dir.
"""

import argparse
import json
import os
from pathlib import Path

from _cli import set_torch_threads, setup_logging
from definemed.io import atomic_dir, read_json, write_json, write_jsonl, write_text
from definemed.training.card import model_card
from definemed.training.cpt import CptSettings, train, training_log

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--run", required=True)
p.add_argument("--packed", required=True)
p.add_argument("--base", required=True)
p.add_argument("--settings", required=True)
p.add_argument("--seed", type=int, required=True)
p.add_argument("--work-dir", required=True)
p.add_argument("--out", required=True)
p.add_argument("--out-log", required=True)
p.add_argument("--out-summary", required=True)
p.add_argument("--threads", type=int, default=None)
p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps (default: the epochs)")
args = p.parse_args()

set_torch_threads(args.threads)
settings = CptSettings.from_json(args.settings)
rank0 = int(os.environ.get("RANK", "0")) == 0
with atomic_dir(args.out, owner=rank0) as tmp:  # the main process writes and renames; the others only train
    summary = train(args.packed, args.base, tmp, args.work_dir, settings, args.seed, max_steps=args.max_steps)
    if rank0:
        packed = read_json(Path(args.packed) / "stats.json")
        summary.update(
            run=args.run, base=args.base, corpus_tokens=packed["tokens"], corpus_documents=packed["documents"]
        )
        write_text(Path(tmp) / "README.md", model_card(args.run, args.base, args.packed, packed, summary, settings))
        (Path(tmp) / "definemed-source.json").write_text(
            json.dumps({"name": args.run, "cpt": summary}, indent=2) + "\n"
        )
if rank0:
    write_jsonl(args.out_log, training_log(args.work_dir), ensure_ascii=True)
    write_json(args.out_summary, summary)
    log.info("%s: %d steps, %d tokens", args.run, summary["steps"], summary["tokens_seen"])
