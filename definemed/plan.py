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
    """The judges' estimated API cost of the run (definemed.judge_cost.plan_cost): `usd` and a
    `detail` line per stage (calls, model, USD)."""
    from definemed.judge_cost import plan_cost

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
        f"  {'run':<32} {'GPUs':>5} {'h':>5} {'GPU-h':>7}   {'paper':>5} {'h':>5} {'GPU-h':>7}",
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


# --- continual pre-training: memory per GPU and checkpoint disk (paper 4.2, A.3) -----------------
# Shapes of the paper's CPT bases as their config.json on the Hub gives them (the repositories of
# config.yaml models.*.hub; not readable offline): 7.25B, 7.62B and 23.6B parameters (4.1: "23.6B").
HUB_MODEL_SHAPES = {
    "mistralai/Mistral-7B-Instruct-v0.3": {
        "vocab_size": 32768,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "tie_word_embeddings": False,
        "attention_bias": False,
    },
    "Qwen/Qwen2.5-7B-Instruct": {
        "vocab_size": 152064,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "head_dim": 128,
        "tie_word_embeddings": False,
        "attention_bias": True,  # Qwen2 has biases on q, k and v
    },
    "mistralai/Mistral-Small-24B-Instruct-2501": {
        "vocab_size": 131072,
        "hidden_size": 5120,
        "intermediate_size": 32768,
        "num_hidden_layers": 40,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "tie_word_embeddings": False,
        "attention_bias": False,
    },
}
GIB = 2**30
# CUDA context, NCCL buffers and allocator slack per GPU: an allowance, not a measurement
RUNTIME_OVERHEAD_BYTES = 3 * GIB
# RMSNorm computes in fp32 (transformers' Qwen2RMSNorm/MistralRMSNorm upcast their input): the fp32
# copies of a recomputed layer's and the final norm's inputs at s=4096, h=3584-5120 come to about
# 1 GB; an allowance, not a measurement
NORM_TEMPORARIES_BYTES = 1 * GIB
# The loss's peak per token and vocabulary entry, in the backward pass: cross_entropy keeps its fp32
# log-softmax (4 bytes) of the fp32 upcast (transformers' ForCausalLMLoss) of the bf16 logits; the
# backward adds the fp32 gradient of the log-probabilities (4) and of the logits (4): 12 bytes. The
# Trainer drops the model's output (the bf16 logits, and accelerate's fp32 copy of them under mixed
# precision) before the backward; code that holds the output through it peaks at 14. Measured on CPU
# for a bf16 Qwen2: 12.0 and 14.0 (tests/test_cpt_memory_plan.py). The 10 used before was the
# forward's peak (bf16 logits, fp32 upcast, fp32 log-softmax).
LOGITS_BYTES_PER_ENTRY = 12
# A run is tight when its estimate leaves less than a quarter of the card free: allocator
# fragmentation and the estimate's allowances have little room there
TIGHT_SHARE = 0.75
MEMORY_COLUMNS = (("states", 7), ("gathered", 7), ("activations", 6), ("logits", 7), ("total", 7))


def model_shape(config: dict, name: str) -> dict:
    """The decoder shape of models.<name>: a tiny model's own entry or the table above."""
    spec = config["models"][name]
    tiny = spec.get("tiny")
    if tiny:
        return {
            "vocab_size": tiny["vocab_size"],
            "hidden_size": tiny["hidden_size"],
            "intermediate_size": tiny["intermediate_size"],
            "num_hidden_layers": tiny["num_layers"],
            "num_attention_heads": tiny["num_heads"],
            "num_key_value_heads": tiny["num_kv_heads"],
            "head_dim": tiny["hidden_size"] // tiny["num_heads"],
            "tie_word_embeddings": False,
            "attention_bias": tiny["architecture"] == "qwen2",
        }
    repo = spec.get("hub", {}).get("repo")
    if repo not in HUB_MODEL_SHAPES:
        raise ValueError(
            f"config: models.{name}: no decoder shape known for {repo!r} (definemed/plan.py HUB_MODEL_SHAPES)"
        )
    return HUB_MODEL_SHAPES[repo]


def decoder_parameters(shape: dict) -> dict:
    """Parameters of a Llama-style decoder (Mistral, Qwen2): per layer, embeddings, total."""
    h, i, d = shape["hidden_size"], shape["intermediate_size"], shape["head_dim"]
    q, kv = shape["num_attention_heads"] * d, shape["num_key_value_heads"] * d
    attention = h * q + 2 * h * kv + q * h + ((q + 2 * kv) if shape["attention_bias"] else 0)
    layer = attention + 3 * h * i + 2 * h  # gate/up/down projections, two RMSNorms
    embeddings = shape["vocab_size"] * h * (1 if shape["tie_word_embeddings"] else 2)
    total = shape["num_hidden_layers"] * layer + embeddings + h  # final norm
    return {"layer": layer, "root": embeddings + h, "total": total}


def fsdp_layout(launcher: str, repo_root) -> dict:
    """Sharding and activation checkpointing of a CPT launcher: read from the accelerate config
    file it names (`--config_file`); a plain `python` launcher runs without FSDP."""
    from pathlib import Path

    import yaml

    words = launcher.split()
    if "--config_file" not in words:
        return {"strategy": "NO_SHARD", "activation_checkpointing": None, "file": None}
    path = Path(repo_root) / words[words.index("--config_file") + 1]
    fsdp = yaml.safe_load(path.read_text()).get("fsdp_config") or {}
    return {
        "strategy": fsdp.get("fsdp_sharding_strategy", "NO_SHARD"),
        "activation_checkpointing": bool(fsdp.get("fsdp_activation_checkpointing")),
        "file": str(path.relative_to(repo_root)),
    }


def cpt_memory(
    shape: dict,
    gpus: int,
    nodes: int,
    strategy: str,
    sequence_length: int,
    micro_batch: int,
    activation_checkpointing: bool,
) -> dict:
    """Estimated bytes per GPU of FSDP1 continual pre-training with AdamW under bf16 mixed precision.

    - states: fp32 parameters (accelerate upcasts bf16 weights under FSDP mixed precision), fp32
      gradients and AdamW's two fp32 moments, 16 bytes a parameter, divided by the sharding group
      (FULL_SHARD: every GPU of the job; HYBRID_SHARD: the GPUs of a node);
    - gathered: bf16 parameters and gradients of the units FSDP unshards at once: the root
      (embeddings, LM head, final norm) and two decoder layers (the current and the prefetched);
    - activations: with activation checkpointing each layer's bf16 input plus one layer recomputed,
      else every layer's; per layer s*b*(15h + 4.75i) bytes (Korthikanti et al. 2022 for a
      SwiGLU MLP of width i, without the s^2 term FlashAttention avoids);
    - logits: b*s*vocab*LOGITS_BYTES_PER_ENTRY (12: the fp32 log-softmax and the fp32 gradients of
      it and of the logits in the backward; measured on CPU);
    - norms: NORM_TEMPORARIES_BYTES, fp32 temporaries of the RMSNorms;
    - runtime: RUNTIME_OVERHEAD_BYTES.
    Bytes; cpt_memory_table prints GiB, the unit of the cards' memory (A100 40GB: 40 GiB).
    With sync_each_batch no unsharded fp32 gradients are kept between micro batches."""
    group = {"FULL_SHARD": gpus * nodes, "HYBRID_SHARD": gpus, "NO_SHARD": 1}.get(strategy)
    if group is None:
        raise ValueError(f"fsdp_sharding_strategy {strategy!r}: no memory model (FULL_SHARD, HYBRID_SHARD, NO_SHARD)")
    n = decoder_parameters(shape)
    tokens = sequence_length * micro_batch
    h, layers = shape["hidden_size"], shape["num_hidden_layers"]
    per_layer = tokens * (15 * h + 4.75 * shape["intermediate_size"])
    if activation_checkpointing:
        activations = layers * tokens * h * 2 + per_layer
    else:
        activations = layers * per_layer
    parts = {
        "states": 16 * n["total"] / group,
        "gathered": 2 * 2 * (n["root"] + 2 * n["layer"]),
        "activations": activations,
        "logits": LOGITS_BYTES_PER_ENTRY * tokens * shape["vocab_size"],
        "norms": NORM_TEMPORARIES_BYTES,
        "runtime": RUNTIME_OVERHEAD_BYTES,
    }
    return {"parameters": n["total"], "sharding_group": group, **parts, "total": sum(parts.values())}


def cpt_checkpoint_disk(parameters: int, kept: int, final_bytes_per_parameter: int = 2) -> dict:
    """Bytes on disk of a CPT run's checkpoints: each holds fp32 parameters (4 bytes) and AdamW's
    two moments (8) however sharded; `kept` stay (save_total_limit) and the Trainer deletes the
    oldest only after writing a new one; plus the final model (bf16)."""
    per_checkpoint = 12 * parameters
    return {
        "per_checkpoint": per_checkpoint,
        "peak": (kept + 1) * per_checkpoint + final_bytes_per_parameter * parameters,
    }


def gpu_fit(total_bytes: float, card_gib: float | None) -> str:
    """'yes', 'TIGHT' (over TIGHT_SHARE of the card), 'NO', or '?' without a declared card."""
    if card_gib is None:
        return "?"
    if total_bytes > card_gib * GIB:
        return "NO"
    return "TIGHT" if total_bytes > TIGHT_SHARE * card_gib * GIB else "yes"


def cpt_memory_table(config: dict, repo_root) -> tuple[str, list[str]]:
    """Per CPT run: GPUs, sharding, parameters, memory per GPU against the GPU's memory
    (cpt.resources.gpu_memory_gb: NVIDIA's "40GB" and "64GB" A100s hold 40 and 64 GiB, 40960 and
    65536 MiB in nvidia-smi), checkpoint disk. Memory in GiB, disk in GB. Returns the table and the
    runs that do not fit; the table also names the tight ones (over TIGHT_SHARE of the card)."""
    from definemed.cpt import CHECKPOINTS_KEPT

    cpt = config["cpt"]
    lines = [
        "continual pre-training: memory per GPU (estimate, GiB) and checkpoint disk (GB):",
        f"  {'run':<32} {'GPUs':>5} {'sharding':<13} {'params':>7} {'states':>7} {'gather':>7} {'activ':>6} "
        f"{'logits':>7} {'total':>7} {'GPU':>5}  {'fits':<5} {'ckpt':>6} {'disk':>6}",
    ]
    too_big, tight = [], []
    for run, spec in cpt["runs"].items():
        resources = {**cpt.get("resources", {}), **spec.get("resources", {})}
        gpus, nodes = int(resources.get("gpu", 0)), int(resources.get("nodes", 1))
        shape = model_shape(config, spec["base"])
        layout = fsdp_layout(spec.get("launcher", cpt["launcher"]), repo_root)
        checkpointing = layout["activation_checkpointing"]
        if checkpointing is None:  # without FSDP the Trainer checkpoints activations
            checkpointing = cpt["gradient_checkpointing"]
        mem = cpt_memory(
            shape,
            max(gpus, 1),
            nodes,
            layout["strategy"],
            cpt["sequence_length"],
            cpt["micro_batch_size"],
            checkpointing,
        )
        disk = cpt_checkpoint_disk(mem["parameters"], CHECKPOINTS_KEPT)
        declared = resources.get("gpu_memory_gb")
        if not gpus:
            fits, gpu_col = "CPU", "-"
        else:
            fits, gpu_col = gpu_fit(mem["total"], declared), "?" if declared is None else f"{declared:g}"
            if fits == "NO":
                too_big.append(run)
            elif fits == "TIGHT":
                tight.append(run)
        strategy = f"{layout['strategy'].split('_')[0].lower()}/{mem['sharding_group']}"
        gib = {k: mem[k] / GIB for k in ("states", "gathered", "activations", "logits", "total")}
        memory = (
            " ".join(f"{gib[k]:>{w}.1f}" for k, w in MEMORY_COLUMNS)
            if gpus
            else " ".join("-".rjust(w) for _, w in MEMORY_COLUMNS)
        )
        lines.append(
            f"  {run:<32} {gpus * nodes:>5} {strategy:<13} {mem['parameters'] / 1e9:>6.2f}B {memory} "
            f"{gpu_col:>5}  {fits:<5} {disk['per_checkpoint'] / 1e9:>6.0f} {disk['peak'] / 1e9:>6.0f}"
        )
    lines.append(
        f"  (memory in GiB, total with {NORM_TEMPORARIES_BYTES / GIB:g} GiB of fp32 norm temporaries and "
        f"{RUNTIME_OVERHEAD_BYTES / GIB:g} GiB of runtime; GPU: cpt.resources.gpu_memory_gb, GiB; TIGHT: over "
        f"{TIGHT_SHARE:.0%} of the card; ckpt: one checkpoint, GB; disk: {CHECKPOINTS_KEPT} kept + the one "
        "being written + the final model, GB, under work/cpt/<run>/ and models/<run>/)"
    )
    if tight:
        lines.append(
            f"  TIGHT: {', '.join(tight)} (little room for allocator fragmentation: watch the first steps' "
            "peak memory; micro batch 1 already, A.3)"
        )
    if too_big:
        lines.append(f"  DOES NOT FIT: {', '.join(too_big)}")
    return "\n".join(lines), too_big
