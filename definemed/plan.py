"""The bill of a run before it starts: per rule the Slurm jobs, GPUs and GPU-hours requested.

The jobs and their resources are read from a Snakemake dry run of the whole DAG
(`snakemake --profile profiles/slurm -n --forceall`): the same resource dicts the Slurm plugin
turns into sbatch arguments (rules/common.smk stage_resources). GPUs are requested per node as
`--gres=gpu:<model>:<n>`; a job's GPU-hours are GPUs per node x nodes x runtime.
"""

import math
import re
from collections import OrderedDict

# Table 8 of the paper: continual pre-training, GPUs x wall time per model.
PAPER_TABLE_8 = {
    "Mistral-7B-Instruct-v0.3": {"gpus": 64, "hours": 72},
    "Qwen2.5-7B-Instruct": {"gpus": 64, "hours": 64},
    "Mistral-Small-24B-Instruct": {"gpus": 128, "hours": 48},
}

_RULE = re.compile(r"^(?:local)?rule (\S+):$")
_RESOURCES = re.compile(r"^\s+resources: (.*)$")
_WILDCARDS = re.compile(r"^\s+wildcards: (.*)$")


def parse_resources(text: str) -> dict:
    """`tmpdir=/tmp, mem_mb=8000, gres=gpu:a100:8, slurm_account=` -> dict (ints where they are)."""
    out = {}
    for item in re.split(r", (?=[A-Za-z_][A-Za-z0-9_]*=)", text.strip()):
        key, _, value = item.partition("=")
        out[key] = int(value) if re.fullmatch(r"-?\d+", value) else value
    return out


def parse_dry_run(text: str) -> list[dict]:
    """The jobs of a `snakemake -n` printout: [{rule, wildcards, resources}] in printed order."""
    jobs, current = [], None
    for line in text.splitlines():
        m = _RULE.match(line.strip())
        if m:
            current = {"rule": m.group(1), "wildcards": "", "resources": {}}
            jobs.append(current)
            continue
        if current is None:
            continue
        m = _WILDCARDS.match(line)
        if m:
            current["wildcards"] = m.group(1).strip()
        m = _RESOURCES.match(line)
        if m:
            current["resources"] = parse_resources(m.group(1))
    return jobs


def gpus_per_node(resources: dict) -> int:
    """GPUs per node of a job: the count of a gpu gres (gpu:N or gpu:type:N), or the plugin's `gpu`."""
    gres = str(resources.get("gres") or "")
    m = re.fullmatch(r"gpu(?::[A-Za-z0-9_.]+)?:(\d+)", gres)
    if m:
        return int(m.group(1))
    return int(resources.get("gpu") or 0)


def job_cost(resources: dict, max_runtime: int | None = None) -> dict:
    """GPUs, hours and GPU-hours of one job; `attempts` is the number of Slurm submissions a
    runtime above the site's limit `max_runtime` (minutes) takes when each retry resumes."""
    nodes = int(resources.get("nodes") or 1)
    gpus = gpus_per_node(resources) * nodes
    minutes = int(resources.get("runtime") or 0)
    attempts = max(1, math.ceil(minutes / max_runtime)) if max_runtime and minutes else 1
    hours = minutes / 60
    return {"nodes": nodes, "gpus": gpus, "hours": hours, "gpu_hours": gpus * hours, "attempts": attempts}


def plan(jobs: list[dict], max_runtime: int | None = None) -> "OrderedDict[str, dict]":
    """Per rule: jobs, Slurm submissions, GPUs per job (max), hours per job (max), GPU-hours."""
    rows = OrderedDict()
    for job in jobs:
        if job["rule"] == "all":
            continue
        cost = job_cost(job["resources"], max_runtime)
        row = rows.setdefault(
            job["rule"], {"jobs": 0, "submissions": 0, "gpus": 0, "hours": 0.0, "gpu_hours": 0.0, "per_job": []}
        )
        row["jobs"] += 1
        row["submissions"] += cost["attempts"]
        row["gpus"] = max(row["gpus"], cost["gpus"])
        row["hours"] = max(row["hours"], cost["hours"])
        row["gpu_hours"] += cost["gpu_hours"]
        row["per_job"].append({"wildcards": job["wildcards"], **cost})
    return rows


def judge_cost(config: dict):
    """The judges' estimated API cost of the run (definemed.judging.plan_cost): `usd` and a
    `detail` line per stage (calls, model, USD)."""
    from definemed.judging import plan_cost

    estimate = plan_cost(config)
    detail = "; ".join(
        f"{k}: {v['calls']} calls to {v['model']} {v['cost']:.2f} USD" for k, v in estimate["calls"].items()
    )
    return {"usd": estimate["total"], "detail": detail}


def format_plan(rows, judge=None, max_runtime: int | None = None) -> str:
    lines = [
        f"{'rule':<26} {'jobs':>5} {'sbatch':>6} {'GPUs/job':>8} {'h/job':>7} {'GPU-hours':>10}",
        "-" * 67,
    ]
    total_jobs = total_sub = 0
    total_gpu_hours = 0.0
    for rule, row in rows.items():
        lines.append(
            f"{rule:<26} {row['jobs']:>5} {row['submissions']:>6} {row['gpus']:>8} {row['hours']:>7.1f} "
            f"{row['gpu_hours']:>10.1f}"
        )
        total_jobs += row["jobs"]
        total_sub += row["submissions"]
        total_gpu_hours += row["gpu_hours"]
    lines.append("-" * 67)
    lines.append(f"{'total':<26} {total_jobs:>5} {total_sub:>6} {'':>8} {'':>7} {total_gpu_hours:>10.1f}")
    if max_runtime:
        lines.append(
            f"(sbatch: submissions under a {max_runtime} min time limit; a longer job is resubmitted by "
            "Snakemake's retries and resumes from its checkpoints)"
        )
    if judge is None:
        lines.append("judge cost: not available")
    else:
        detail = f" ({judge['detail']})" if judge.get("detail") else ""
        lines.append(f"judge cost: {judge['usd']:.2f} USD{detail}")
    return "\n".join(lines)


def table8_comparison(rows, runs: dict, display: dict) -> str:
    """train_cpt per run against the paper's Table 8 (GPUs x hours)."""
    lines = [
        "continual pre-training against the paper's Table 8:",
        f"  {'run':<30} {'GPUs':>5} {'h':>5} {'GPU-h':>7}   {'paper':>5} {'h':>5} {'GPU-h':>7}",
    ]
    jobs = {j["wildcards"]: j for j in rows.get("train_cpt", {}).get("per_job", [])}
    ours_total = paper_total = 0.0
    for run, spec in runs.items():
        job = jobs.get(f"run={run}")
        if job is None:
            continue
        paper = PAPER_TABLE_8.get(display.get(spec["base"], ""))
        ours_total += job["gpu_hours"]
        paper_cols = "    -     -       -"
        if paper and spec.get("corpus") == "finemed":
            paper_gh = paper["gpus"] * paper["hours"]
            paper_total += paper_gh
            paper_cols = f"{paper['gpus']:>5} {paper['hours']:>5} {paper_gh:>7.0f}"
        lines.append(f"  {run:<30} {job['gpus']:>5} {job['hours']:>5.0f} {job['gpu_hours']:>7.0f}   {paper_cols}")
    lines.append(f"  {'total':<30} {'':>5} {'':>5} {ours_total:>7.0f}   {'':>5} {'':>5} {paper_total:>7.0f}")
    return "\n".join(lines)
