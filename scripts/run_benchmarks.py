"""Evaluate one model on one task group with lm-evaluation-harness (paper 5.1, A.6) and write one
JSON per task (accuracy and standard error as the tables print them, plus what shaped the number)
and lm-eval's per-sample log, under fixed names.

    python scripts/run_benchmarks.py --model definemed-qwen2.5-7b --model-dir models/definemed-qwen2.5-7b \
        --tasks '<benchmarks.tasks entries of the group as JSON>' --settings '<benchmarks section as JSON>' \
        --data data/benchmarks/medqa_de.jsonl --work-dir work/benchmarks/definemed-qwen2.5-7b/medical \
        --out-dir results/benchmarks/definemed-qwen2.5-7b \
        --out-full results/benchmarks/definemed-qwen2.5-7b/medical.lm_eval.json
"""

import argparse
import json
import os
import shutil
from pathlib import Path

from _cli import set_torch_threads, setup_logging
from definemed.evaluation.benchmarks import (
    BenchmarkSettings,
    check_locked_revisions,
    evaluate,
    stable_json,
    task_leaves,
    task_summary,
)
from definemed.io import atomic_path, write_json, write_text
from definemed.model_facts import weights_sha256

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--model", required=True)
p.add_argument("--model-dir", required=True)
p.add_argument("--tasks", required=True)
p.add_argument("--settings", required=True)
p.add_argument(
    "--data", nargs="*", default=[], help="local JSONL files of the tasks with local data, named <task>.jsonl"
)
p.add_argument(
    "--lm-eval-data",
    nargs="*",
    default=[],
    help="records of the Hub datasets the tasks read (fetch_lm_eval_dataset): cached at the lock revision only",
)
p.add_argument("--work-dir", required=True)
p.add_argument("--out-dir", required=True)
p.add_argument("--out-full", required=True)
p.add_argument("--threads", type=int, default=None)
args = p.parse_args()

set_torch_threads(args.threads)
settings = BenchmarkSettings.from_json(args.settings)
tasks = json.loads(args.tasks)
local = {Path(f).name.removesuffix(".jsonl"): f for f in args.data}
for key, spec in tasks.items():
    if spec["data"] != "hub":
        if key not in local:
            raise SystemExit(f"benchmarks.tasks.{key}: data {spec['data']!r} needs --data <dir>/{key}.jsonl")
        spec["data"] = local[key]
if args.lm_eval_data:  # before the model loads: the lock's dataset revisions and no others
    import datasets.config

    check_locked_revisions(
        [json.loads(Path(f).read_text()) for f in args.lm_eval_data],
        os.environ.get("HF_DATASETS_CACHE") or datasets.config.HF_DATASETS_CACHE,
    )
shutil.rmtree(args.work_dir, ignore_errors=True)  # generated task YAMLs only: cheap to remake
results = evaluate(args.model_dir, tasks, settings, args.work_dir)

out = Path(args.out_dir)
weights = weights_sha256(args.model_dir)  # which weights this row evaluated (Tables 4, 9, 11)
for key, spec in tasks.items():
    summary = task_summary(results, key, spec, args.model, settings)
    summary["model_weights_sha256"] = weights
    if spec.get("items") is not None and summary["n"] != spec["items"]:
        raise SystemExit(
            f"benchmarks.tasks.{key}: lm-eval scored {summary['n']} items of {spec['lm_eval_task']}"
            f" ({spec['data']}), config expects {spec['items']}"
        )
    name = results["definemed_task_names"][key]
    with atomic_path(out / f"{key}.samples.jsonl") as tmp, open(tmp, "w") as f:
        for leaf in task_leaves(results, name):  # a group's samples: its tasks' in order, each with its task
            for s in results["samples"][leaf]:
                f.write(stable_json({**s, "task": leaf} if leaf != name else s) + "\n")
    write_json(out / f"{key}.json", summary)
    log.info("%s %s: %s %.4f ± %.4f (n=%s)", args.model, key, spec["metric"], summary["accuracy"], summary["stderr"],
             summary["n"])  # fmt: skip
full = {k: v for k, v in results.items() if k != "samples"}
for volatile in ("date", "start_time", "end_time", "total_evaluation_time_seconds"):
    full.pop(volatile, None)  # keep results/ reproducible byte for byte
write_text(args.out_full, stable_json(full, indent=2) + "\n")
