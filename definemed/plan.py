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
    """The judges' estimated API cost of the run (definemed.judges.cost.plan_cost): `usd` and a
    `detail` line per stage (calls, model, USD)."""
    from definemed.judges.cost import plan_cost

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
        "max_position_embeddings": 32768,
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
        "max_position_embeddings": 32768,
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
        "max_position_embeddings": 32768,
    },
    # the zero-shot labeller (3.2, A.1): 8 experts per layer, 2 active; 46.7B parameters
    "mistralai/Mixtral-8x7B-Instruct-v0.1": {
        "vocab_size": 32000,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "tie_word_embeddings": False,
        "attention_bias": False,
        "num_local_experts": 8,
        "max_position_embeddings": 32768,
    },
    # the benchmark baselines (Table 4, 11): Mistral-7B-Instruct-v0.1's shape (32,000 tokens)
    "BioMistral/BioMistral-7B": {
        "vocab_size": 32000,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "tie_word_embeddings": False,
        "attention_bias": False,
        "max_position_embeddings": 32768,
    },
}
HUB_MODEL_SHAPES["BioMistral/BioMistral-7B-SLERP"] = HUB_MODEL_SHAPES["BioMistral/BioMistral-7B"]
# the classifier's backbone (3.2, A.2), an encoder: 278M parameters with its classification head
HUB_ENCODER_SHAPES = {
    "FacebookAI/xlm-roberta-base": {
        "vocab_size": 250002,
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "max_position_embeddings": 514,
        "type_vocab_size": 1,
        "num_labels": 2,
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
# for a bf16 Qwen2: 12.0 and 14.0 (tests/training/test_cpt_memory_plan.py). The 10 used before was the
# forward's peak (bf16 logits, fp32 upcast, fp32 log-softmax).
LOGITS_BYTES_PER_ENTRY = 12
# A run is tight when its estimate leaves less than a quarter of the card free: allocator
# fragmentation and the estimate's allowances have little room there
TIGHT_SHARE = 0.75
MEMORY_COLUMNS = (("states", 7), ("gathered", 7), ("activations", 6), ("logits", 7), ("total", 7))


def _tiny_shape(tiny: dict) -> dict:
    """The transformers config keys every tiny model's entry (models.<name>.tiny) names directly."""
    return {
        "vocab_size": tiny["vocab_size"],
        "hidden_size": tiny["hidden_size"],
        "intermediate_size": tiny["intermediate_size"],
        "num_hidden_layers": tiny["num_layers"],
        "num_attention_heads": tiny["num_heads"],
    }


def model_shape(config: dict, name: str) -> dict:
    """The decoder shape of models.<name>: a tiny model's own entry or the table above."""
    spec = config["models"][name]
    tiny = spec.get("tiny")
    if tiny:
        return {
            **_tiny_shape(tiny),
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
    """Parameters of a Llama-style decoder (Mistral, Qwen2, Mixtral): per layer, embeddings, total.

    With h = hidden_size, i = intermediate_size, d = head_dim, q = heads*d, kv = kv_heads*d,
    E = num_local_experts (1 for a dense model), V = vocab_size, L = layers:
    layer = (h*q + 2*h*kv + q*h [+ q + 2*kv biases]) + E*3*h*i [+ h*E router] + 2*h,
    total = L*layer + V*h*(1 if tied else 2) + h."""
    h, i, d = shape["hidden_size"], shape["intermediate_size"], shape["head_dim"]
    q, kv = shape["num_attention_heads"] * d, shape["num_key_value_heads"] * d
    attention = h * q + 2 * h * kv + q * h + ((q + 2 * kv) if shape["attention_bias"] else 0)
    experts = shape.get("num_local_experts", 1)
    router = h * experts if experts > 1 else 0
    layer = attention + experts * 3 * h * i + router + 2 * h  # gate/up/down projections, two RMSNorms
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
    from definemed.training.cpt import CHECKPOINTS_KEPT

    cpt = config["cpt"]
    lines = [
        "continual pre-training: memory per GPU (estimate, GiB) and checkpoint disk (GB):",
        f"  {'run':<32} {'GPUs':>5} {'sharding':<13} {'params':>7} {'states':>7} {'gather':>7} {'activ':>6} "
        f"{'logits':>7} {'total':>7} {'GPU':>5}  {'fits':<5} {'ckpt':>6} {'disk':>6}",
    ]
    too_big, tight = [], []
    for run in cpt["runs"]:
        mem, layout, resources = cpt_run_memory(config, run, repo_root)
        gpus, nodes = int(resources.get("gpu", 0)), int(resources.get("nodes", 1))
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


# --- every GPU job against its card (issue 26) ----------------------------------------------------
# The card a stage's jobs run on when its resources name none: A.3's A100 40GB (Karolina), the card
# the config's stages assume; a stage on other cards says so (cpt.runs.<24B>.resources: 64)
DEFAULT_GPU_MEMORY_GB = 40
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4, "auto": 2}
# vLLM's scheduler defaults (vllm 0.33 EngineArgs): tokens of one forward step and sequences of a
# batch, the shapes of its profiling run, which sizes the activation memory it keeps free
VLLM_MAX_BATCHED_TOKENS = 8192
VLLM_MAX_SEQUENCES = 256


def encoder_parameters(shape: dict) -> int:
    """Parameters of a BERT-style encoder with a classification head (XLM-RoBERTa): with h, i, V,
    P = max_position_embeddings, T = type_vocab_size, L layers and C labels:
    (V + P + T)*h + 2*h + L*(4*(h*h + h) + 2*h*i + i + h + 4*h) + (h*h + h) + (h*C + C)."""
    h, i = shape["hidden_size"], shape["intermediate_size"]
    embeddings = (shape["vocab_size"] + shape["max_position_embeddings"] + shape["type_vocab_size"]) * h + 2 * h
    layer = 4 * (h * h + h) + 2 * h * i + i + h + 4 * h
    head = h * h + h + h * shape["num_labels"] + shape["num_labels"]
    return embeddings + shape["num_hidden_layers"] * layer + head


def encoder_shape(config: dict, name: str) -> dict:
    """The encoder shape of models.<name>: a tiny model's own entry or HUB_ENCODER_SHAPES."""
    spec = config["models"][name]
    tiny = spec.get("tiny")
    if tiny:
        return {
            **_tiny_shape(tiny),
            "max_position_embeddings": tiny["max_position_embeddings"],
            "type_vocab_size": 1,
            "num_labels": tiny.get("num_labels", 2),
        }
    repo = spec.get("hub", {}).get("repo")
    if repo not in HUB_ENCODER_SHAPES:
        raise ValueError(f"config: models.{name}: no encoder shape known for {repo!r} (definemed/plan.py)")
    return HUB_ENCODER_SHAPES[repo]


def kv_bytes_per_token(shape: dict, dtype_bytes: int = 2) -> int:
    """KV cache of one token over all layers: keys and values, kv_heads*head_dim each, per layer."""
    return 2 * shape["num_hidden_layers"] * shape["num_key_value_heads"] * shape["head_dim"] * dtype_bytes


def vllm_memory(shape: dict, tensor_parallel: int, max_model_len: int, dtype_bytes: int = 2) -> dict:
    """Bytes per GPU a vLLM engine needs before it starts, its weights and work space sharded over
    `tensor_parallel` GPUs:
    - weights: dtype_bytes * parameters / tp (decoder_parameters);
    - kv_cache: one sequence of max_model_len tokens (vLLM refuses to start when its KV cache
      cannot hold one), kv_bytes_per_token * max_model_len / tp;
    - activations: the profiling step's peak, VLLM_MAX_BATCHED_TOKENS tokens through one layer's
      widest point (hidden plus the MLP's gate and up projections, i/tp each, in dtype, twice for
      the residual and the output) plus fp32 logits of VLLM_MAX_SEQUENCES sequences;
    - runtime: RUNTIME_OVERHEAD_BYTES (CUDA context, NCCL buffers, CUDA graphs).
    vLLM keeps all of it inside gpu_memory_utilization of the card (the rest it leaves alone)."""
    n = decoder_parameters(shape)["total"]
    tp = max(int(tensor_parallel), 1)
    h, i = shape["hidden_size"], shape["intermediate_size"]
    parts = {
        "weights": dtype_bytes * n / tp,
        "kv_cache": kv_bytes_per_token(shape, dtype_bytes) * max_model_len / tp,
        "activations": VLLM_MAX_BATCHED_TOKENS * (h + 2 * i / tp) * dtype_bytes * 2
        + VLLM_MAX_SEQUENCES * shape["vocab_size"] * 4,
        "runtime": RUNTIME_OVERHEAD_BYTES,
    }
    return {"parameters": n, **parts, "total": sum(parts.values())}


def hf_inference_memory(shape: dict, sequence_length: int, batch: int = 1, dtype_bytes: int = 2) -> dict:
    """Bytes on one GPU of a transformers forward pass without gradients (lm-eval's hf backend):
    weights in dtype; activations of `batch` sequences through the widest layer point (as
    vllm_memory); their logits in fp32 with lm-eval's log-softmax beside them (8 bytes an entry);
    RUNTIME_OVERHEAD_BYTES."""
    n = decoder_parameters(shape)["total"]
    tokens = sequence_length * batch
    parts = {
        "weights": dtype_bytes * n,
        "kv_cache": kv_bytes_per_token(shape, dtype_bytes) * tokens,
        "activations": tokens * (shape["hidden_size"] + 2 * shape["intermediate_size"]) * dtype_bytes * 2
        + 8 * tokens * shape["vocab_size"],
        "runtime": RUNTIME_OVERHEAD_BYTES,
    }
    return {"parameters": n, **parts, "total": sum(parts.values())}


def encoder_training_memory(shape: dict, batch: int, sequence_length: int) -> dict:
    """Bytes on one GPU of fine-tuning an encoder with AdamW under bf16 autocast (the Trainer's
    bf16=True keeps fp32 weights): states 16 bytes a parameter (fp32 weights, gradients, two
    moments); activations per layer s*b*h*(34 + 5*a*s/h) bytes (Korthikanti et al. 2022, 16-bit
    activations, attention scores kept: no FlashAttention assumed) for every layer; runtime."""
    n = encoder_parameters(shape)
    s, b, h, a = sequence_length, batch, shape["hidden_size"], shape["num_attention_heads"]
    parts = {
        "weights": 16 * n,
        "kv_cache": 0,
        "activations": shape["num_hidden_layers"] * s * b * h * (34 + 5 * a * s / h),
        "runtime": RUNTIME_OVERHEAD_BYTES,
    }
    return {"parameters": n, **parts, "total": sum(parts.values())}


def encoder_inference_memory(shape: dict, tokens_per_batch: int, sequence_length: int, dtype_bytes: int = 2) -> dict:
    """Bytes on one GPU of scoring with an encoder (definemed.dataset.classifier, bf16 on GPU): weights;
    the peak of one layer over a batch of tokens_per_batch padded tokens (hidden states, MLP
    intermediate, attention scores of batch = tokens/sequence_length sequences); runtime."""
    n = encoder_parameters(shape)
    h, i, a = shape["hidden_size"], shape["intermediate_size"], shape["num_attention_heads"]
    batch = max(1, tokens_per_batch // sequence_length)
    parts = {
        "weights": dtype_bytes * n,
        "kv_cache": 0,
        "activations": tokens_per_batch * (4 * h + i) * dtype_bytes + batch * a * sequence_length**2 * dtype_bytes * 2,
        "runtime": RUNTIME_OVERHEAD_BYTES,
    }
    return {"parameters": n, **parts, "total": sum(parts.values())}


def _card(resources: dict) -> float:
    return float(resources.get("gpu_memory_gb") or DEFAULT_GPU_MEMORY_GB)


def evaluated_shape(config: dict, name: str) -> dict:
    """Decoder shape of any evaluated model: a models entry, a CPT run or a merge (its base's)."""
    runs = config["cpt"]["runs"]
    run = name[: -len("-slerp")] if name.endswith("-slerp") else name
    return model_shape(config, runs[run]["base"] if run in runs else name)


def _job(rule, wildcards, kind, gpus, tp, resources, mem, budget_share=1.0, note=""):
    card = _card(resources)
    budget = budget_share * card * GIB
    return {
        "rule": rule,
        "job": f"{rule} {wildcards}".strip(),
        "kind": kind,
        "gpus": gpus,
        "tensor_parallel": tp,
        "card_gib": card,
        "budget_gib": budget / GIB,
        **{k: mem[k] / GIB for k in ("weights", "kv_cache", "activations", "runtime", "total")},
        "parameters": mem["parameters"],
        "fits": mem["total"] <= budget and tp <= gpus,
        "note": note if tp <= gpus else f"tensor parallel {tp} on {gpus} GPU(s) requested",
    }


def cpt_run_memory(config: dict, run: str, repo_root, resources: dict | None = None, launcher: str | None = None):
    """cpt_memory of one CPT run as its job runs it (resources, launcher, activation checkpointing):
    the one memory model of CPT, for cpt_memory_table and gpu_fit_jobs alike."""
    cpt = config["cpt"]
    spec = cpt["runs"][run]
    if resources is None:
        resources = {**cpt.get("resources", {}), **spec.get("resources", {})}
    gpus, nodes = int(resources.get("gpu", 0)), int(resources.get("nodes", 1))
    layout = fsdp_layout(launcher or spec.get("launcher", cpt["launcher"]), repo_root)
    checkpointing = layout["activation_checkpointing"]
    if checkpointing is None:  # without FSDP the Trainer checkpoints activations
        checkpointing = cpt["gradient_checkpointing"]
    mem = cpt_memory(
        model_shape(config, spec["base"]),
        max(gpus, 1),
        nodes,
        layout["strategy"],
        cpt["sequence_length"],
        cpt["micro_batch_size"],
        checkpointing,
    )
    return mem, layout, resources


def gpu_fit_jobs(config: dict, repo_root) -> list[dict]:
    """Every GPU job of the run with its estimated memory per GPU against its card (GiB).

    Jobs: label_documents (vLLM or transformers), train_classifier, score_shard, train_cpt and
    cpt_scaling (cpt_memory, through cpt_run_memory), generate_responses and the benchmark jobs
    (vLLM with each model's tensor-parallel GPUs, or lm-eval's hf backend on one). The card is the
    stage's resources.gpu_memory_gb, DEFAULT_GPU_MEMORY_GB where it names none; a vLLM job must fit
    within gpu_memory_utilization of it. Jobs of stages with no GPU (gpu: 0) are left out."""
    from definemed.evaluation.benchmarks import group_models, group_tasks
    from definemed.judges.generation import GenerationSettings, generation_models, generation_settings

    jobs = []
    lab = config["labelling"]
    res = lab.get("resources", {})
    if int(res.get("gpu", 0)):
        shape = model_shape(config, lab["model"])
        if lab["backend"] == "vllm":
            v = lab.get("vllm", {})
            tp = int(v.get("tensor_parallel_size", 1))
            mem = vllm_memory(shape, tp, v.get("max_model_len", 4096), DTYPE_BYTES.get(v.get("dtype"), 2))
            jobs.append(
                _job("label_documents", "", "vllm", int(res["gpu"]), tp, res, mem, v.get("gpu_memory_utilization", 0.9))
            )
        else:
            mem = hf_inference_memory(shape, lab["max_document_tokens"] + 256)
            jobs.append(_job("label_documents", "", "transformers", int(res["gpu"]), 1, res, mem))
    cls = config["classifier"]
    enc = encoder_shape(config, cls["model"])
    res = cls.get("resources", {})
    if int(res.get("gpu", 0)):
        mem = encoder_training_memory(enc, cls["batch_size"], cls["max_length"])
        jobs.append(_job("train_classifier", "", "training", int(res["gpu"]), 1, res, mem))
    res = config["scoring"].get("resources", {})
    if int(res.get("gpu", 0)):
        mem = encoder_inference_memory(enc, cls["max_tokens_per_batch"], cls["max_length"])
        jobs.append(_job("score_shard", "shard=*", "inference", int(res["gpu"]), 1, res, mem))
    for run in config["cpt"]["runs"]:
        mem, layout, res = cpt_run_memory(config, run, repo_root)
        if int(res.get("gpu", 0)):
            mem = {**mem, "weights": mem["states"] + mem["gathered"], "kv_cache": 0.0,
                   "activations": mem["activations"] + mem["logits"] + mem["norms"]}  # fmt: skip
            jobs.append(
                _job(
                    "train_cpt",
                    f"run={run}",
                    f"cpt {layout['strategy'].split('_')[0].lower()}",
                    int(res["gpu"]),
                    1,
                    res,
                    mem,
                )
            )
    scaling = config.get("paper", {}).get("scaling") or {}
    res = scaling.get("resources", {})
    if int(res.get("gpu", 0)):
        for run in scaling.get("runs", []):
            mem, layout, _ = cpt_run_memory(config, run, repo_root, resources=res, launcher=scaling["launcher"])
            mem = {**mem, "weights": mem["states"] + mem["gathered"], "kv_cache": 0.0,
                   "activations": mem["activations"] + mem["logits"] + mem["norms"]}  # fmt: skip
            jobs.append(
                _job(
                    "cpt_scaling",
                    f"run={run}",
                    f"cpt {layout['strategy'].split('_')[0].lower()}",
                    int(res["gpu"]),
                    1,
                    res,
                    mem,
                )
            )
    gen = config.get("generation")
    res = (gen or {}).get("resources", {})
    if gen and "judges" in config and int(res.get("gpu", 0)):
        for name in generation_models(config):
            shape = evaluated_shape(config, name)
            job = GenerationSettings.from_config(generation_settings(config, name))  # as the job reads it
            if job.backend == "vllm":
                v = job.vllm
                tp = v.tensor_parallel_size
                mem = vllm_memory(shape, tp, v.max_model_len, DTYPE_BYTES.get(v.dtype, 2))
                jobs.append(
                    _job("generate_responses", f"model={name}", "vllm", tp, tp, res, mem, v.gpu_memory_utilization)
                )
            else:
                mem = hf_inference_memory(shape, 1024 + job.max_new_tokens, job.batch_size)
                jobs.append(_job("generate_responses", f"model={name}", "transformers", int(res["gpu"]), 1, res, mem))
    bench = config["benchmarks"]
    res = bench.get("resources", {})
    if int(res.get("gpu", 0)):
        args = bench.get("model_args", {})
        dtype_bytes = DTYPE_BYTES.get(bench.get("dtype"), 2)
        for group in ("medical", "general"):
            if not group_tasks(config, group):
                continue
            for name in group_models(config, group):
                shape = evaluated_shape(config, name)
                length = int(args.get("max_model_len") or args.get("max_length") or shape["max_position_embeddings"])
                base = evaluated_base(config, name)
                if bench["backend"] == "vllm":
                    tp = int(bench.get("tensor_parallel", {}).get(base, 1))
                    mem = vllm_memory(shape, tp, length, dtype_bytes)
                    jobs.append(
                        _job(
                            f"benchmark_{group}",
                            f"model={name}",
                            "vllm",
                            tp,
                            tp,
                            res,
                            mem,
                            args.get("gpu_memory_utilization", 0.9),
                        )
                    )
                else:
                    mem = hf_inference_memory(shape, length, 1, dtype_bytes)
                    jobs.append(_job(f"benchmark_{group}", f"model={name}", "hf", int(res["gpu"]), 1, res, mem))
    return jobs


def evaluated_base(config: dict, name: str) -> str:
    runs = config["cpt"]["runs"]
    run = name[: -len("-slerp")] if name.endswith("-slerp") else name
    return runs[run]["base"] if run in runs else name


def gpu_fit_table(jobs: list[dict], dry_run_gpu_rules: set[str] | None = None) -> tuple[str, list[str]]:
    """The fit check's table and the jobs that do not fit; with the dry run's GPU rules, the ones
    no memory model covers are named too."""
    lines = [
        "GPU memory per GPU of every GPU job (estimate, GiB) against its card:",
        f"  {'job':<58} {'kind':<14} {'GPUs':>4} {'TP':>3} {'params':>7} {'weights':>7} {'KV':>5} {'activ':>6} "
        f"{'total':>6} {'limit':>6} {'card':>5}  fits",
    ]
    bad = []
    for j in jobs:
        fits = "yes" if j["fits"] else "NO"
        if not j["fits"]:
            bad.append(j["job"])
        lines.append(
            f"  {j['job']:<58} {j['kind']:<14} {j['gpus']:>4} {j['tensor_parallel']:>3} {j['parameters'] / 1e9:>6.2f}B "
            f"{j['weights']:>7.1f} {j['kv_cache']:>5.1f} {j['activations']:>6.1f} {j['total']:>6.1f} "
            f"{j['budget_gib']:>6.1f} {j['card_gib']:>5g}  {fits}{'  ' + j['note'] if j['note'] else ''}"
        )
    lines.append(
        "  (weights: parameters in their dtype (CPT: FSDP's sharded fp32 states and gathered units; "
        "classifier training: 16 bytes a parameter), per GPU under tensor parallel TP; KV: one "
        "max_model_len sequence (vLLM); activ: activations, logits and temporaries; total with "
        f"{RUNTIME_OVERHEAD_BYTES / GIB:g} GiB of runtime; limit: gpu_memory_utilization of the card for vLLM, "
        f"else the card; card: the stage's resources.gpu_memory_gb, else {DEFAULT_GPU_MEMORY_GB})"
    )
    if dry_run_gpu_rules is not None:
        unmodelled = sorted(dry_run_gpu_rules - {j["rule"] for j in jobs})
        if unmodelled:
            lines.append(f"  NO MEMORY MODEL (GPU jobs not checked): {', '.join(unmodelled)}")
    if bad:
        lines.append(f"  DOES NOT FIT: {', '.join(bad)}")
    return "\n".join(lines), bad
