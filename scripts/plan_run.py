"""Print the bill of a run before it starts: per rule the Slurm jobs, GPU-hours and the total;
per CPT run the memory per GPU against the GPU's declared memory, and the checkpoint disk; every
GPU job's estimated memory per GPU against its card (exit status 1 when one does not fit).

    python scripts/plan_run.py                       # config.yaml, profiles/slurm (make plan)
    python scripts/plan_run.py --configfile config/miniature.yaml

Offline: a Snakemake dry run of the whole DAG (--forceall) through the Slurm profile, read back.
The site's time limit (DEFINEMED_SLURM_MAX_RUNTIME, minutes, default 1440) splits longer jobs
into resumed submissions; GPU-hours count the whole runtime each job needs.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from _cli import setup_logging
from definemed.config import load
from definemed.plan import (
    cpt_memory_table,
    format_plan,
    gpu_fit_jobs,
    gpu_fit_table,
    gpus_per_node,
    judge_cost,
    parse_dry_run,
    plan,
    table8_comparison,
)

REPO = Path(__file__).resolve().parents[1]
log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--configfile", default="config.yaml")
p.add_argument("--profile", default="profiles/slurm")
p.add_argument("--per-job", action="store_true", help="also list every GPU job")
args = p.parse_args()

max_runtime = int(os.environ.get("DEFINEMED_SLURM_MAX_RUNTIME") or 1440)
# the dry run with the limit lifted: each job's full runtime; `plan` splits it at the limit
env = dict(os.environ, DEFINEMED_SLURM_MAX_RUNTIME=str(10**9))
env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
cmd = [
    str(Path(sys.executable).parent / "snakemake"),
    "--profile",
    args.profile,
    "--configfile",
    args.configfile,
    "--dry-run",
    "--forceall",
    # planning needs no software: conda (the profile's deployment) is not needed for a dry run
    "--software-deployment-method",
    "env-modules",
]
proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
if proc.returncode != 0:
    sys.exit(f"dry run failed: {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
jobs = parse_dry_run(proc.stdout)
if not jobs:
    sys.exit(f"no jobs in the dry run's output:\n{proc.stdout[-3000:]}")
rows = plan(jobs, max_runtime)
config = load(REPO / args.configfile)
print(f"plan of {args.configfile} through {args.profile} (time limit {max_runtime} min per job)\n")
print(format_plan(rows, judge_cost(config), max_runtime))
print()
display = {name: spec.get("display", name) for name, spec in config["models"].items()}
print(table8_comparison(rows, config["cpt"]["runs"], display))
print()
print(cpt_memory_table(config, REPO)[0])
print()
gpu_rules = {j["rule"] for j in jobs if gpus_per_node(j["resources"])}
fit_table, too_big = gpu_fit_table(gpu_fit_jobs(config, REPO), gpu_rules)
print(fit_table)
if args.per_job:
    print("\nGPU jobs:")
    for rule, row in rows.items():
        for job in row["per_job"]:
            if job["gpus"]:
                print(
                    f"  {rule} {job['wildcards']}: {job['nodes']} node(s), {job['gpus']} GPUs, "
                    f"{job['hours']:.1f} h, {job['gpu_hours']:.1f} GPU-h, {job['attempts']} submission(s)"
                )
if too_big:
    sys.exit(f"{len(too_big)} GPU job(s) do not fit their cards: {', '.join(too_big)}")
