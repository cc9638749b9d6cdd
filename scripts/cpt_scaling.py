"""Training throughput of a few continual pre-training steps at one node count (paper A.3, Figure 5).

Start it with the launcher that gives the node count, e.g. on CPU with two processes (gloo):

    torchrun --standalone --nproc_per_node 2 scripts/cpt_scaling.py --cpt-run definemed-qwen2.5-7b \
        --packed results/packed/definemed-qwen2.5-7b --base models/qwen2.5-7b-instruct \
        --settings '<cpt section as JSON>' --seed 42 --nodes 2 --steps 6 --warmup-steps 2 \
        --work-dir work/scaling/definemed-qwen2.5-7b/nodes-2 --out results/scaling/definemed-qwen2.5-7b/nodes-2.json

It runs the same training code as scripts/train_cpt.py (definemed.training.cpt.train), stopped after
--steps optimizer steps, and writes the mean throughput of the steps after the first
--warmup-steps; the trained weights are thrown away. --work-dir must not exist (the rule removes
it before the launch): a measurement never resumes, old steps would mix into the mean.
"""

import argparse
import dataclasses
import os
import shutil
from pathlib import Path

from _cli import set_torch_threads, setup_logging
from definemed.io import read_jsonl, write_json
from definemed.training.cpt import THROUGHPUT_FILE, CptSettings, train
from definemed.training.scaling import throughput

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--cpt-run", required=True, help="CPT run key (torchrun claims --run)")
p.add_argument("--packed", required=True)
p.add_argument("--base", required=True)
p.add_argument("--settings", required=True)
p.add_argument("--seed", type=int, required=True)
p.add_argument("--nodes", type=int, required=True, help="node count this launch stands for")
p.add_argument("--steps", type=int, required=True)
p.add_argument("--warmup-steps", type=int, required=True, help="first steps left out of the mean")
p.add_argument("--work-dir", required=True)
p.add_argument("--out", required=True)
p.add_argument("--threads", type=int, default=None, help="torch threads per process")
args = p.parse_args()

set_torch_threads(args.threads)
settings = dataclasses.replace(CptSettings.from_json(args.settings), save_steps=args.steps)
rank0 = int(os.environ.get("RANK", "0")) == 0
work = Path(args.work_dir)
summary = train(args.packed, args.base, work / "model", work / "trainer", settings, args.seed, max_steps=args.steps)
if rank0:
    rows = read_jsonl(work / "trainer" / THROUGHPUT_FILE)
    result = {
        "run": args.cpt_run,
        "nodes": args.nodes,
        "processes": summary["world_size"],
        "threads_per_process": args.threads,
        "device": summary["device"],
        "attention": summary["attention"],
        "parameters": summary["parameters"],
        "tokens_per_step": summary["tokens_per_step"],
        **throughput(rows, summary["tokens_per_step"], summary["world_size"], args.warmup_steps),
    }
    write_json(args.out, result)
    shutil.rmtree(work, ignore_errors=True)
    log.info(
        "%s at %d node(s): %.0f tokens/s (%.0f per process)",
        args.cpt_run,
        args.nodes,
        result["tokens_per_s"],
        result["tokens_per_s_per_device"],
    )
