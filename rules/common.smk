import os
import re
import json

from snakemake.utils import min_version, validate

min_version("9.0")


validate(config, schema="../schemas/config.schema.yaml")

ROOT = config[
    "root"
]  # "" (paper run) or "miniature/": every output path starts with it
MODELS = config["models"]
HUB_MODELS = [m for m, spec in MODELS.items() if "hub" in spec]
TINY_MODELS = [m for m, spec in MODELS.items() if "tiny" in spec]
FIXTURE = config["fineweb"]["source"] == "fixture"


NEVER = (
    "(?!)"  # a wildcard constraint nothing matches: switches a rule off for this run
)
SHARD_NAME = (
    "[^/]+"  # shard names come from the manifest; the download script checks them
)


def one_of(names):
    """Wildcard constraint matching exactly `names` (nothing when empty)."""
    return "|".join(re.escape(n) for n in names) if names else NEVER


def as_json(obj):
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def model_dir(name):
    if name not in MODELS:
        raise ValueError(f"config: model {name!r} is not defined under 'models'")
    return f"{ROOT}models/{name}"


def shard_names():
    if FIXTURE:
        return [
            f"train-000_{i:05d}" for i in range(config["fineweb"]["fixture"]["shards"])
        ]
    from definemed.fineweb import read_manifest

    return [e.shard for e in read_manifest(config["fineweb"]["manifest"])]


SHARDS = shard_names()


def shard_files():
    return expand(f"{ROOT}data/fineweb2/{{shard}}.parquet", shard=SHARDS)


def truth_files():
    """The fixture's ground truth: read only by miniature reports and tests."""
    return expand(f"{ROOT}data/fixture_truth/{{shard}}.parquet", shard=SHARDS)


def annotation_files():
    """Filled annotation sheets: simulated in the miniature, from config in the paper run."""
    validation = config["label_validation"]
    if "simulate_annotators" in validation:
        return expand(
            f"{ROOT}results/labels/annotation/simulated/annotator-{{k}}.csv",
            k=range(1, validation["annotators"] + 1),
        )
    return validation["annotation_files"]


def corpus_parts(run):
    corpus = config["cpt"]["runs"][run]["corpus"]
    if corpus == "finemed":
        return expand(f"{ROOT}results/finemed/{{shard}}.parquet", shard=SHARDS)
    return [f"{ROOT}results/ablation/fineweb2_random.parquet"]


def cpt_resources(run):
    """cpt.resources with the run's own overrides (e.g. the 24B model's node count)."""
    run_spec = config["cpt"]["runs"][run]
    return {**config["cpt"]["resources"], **run_spec.get("resources", {})}


def all_targets():
    targets = [model_dir(m) for m in MODELS]
    targets += [
        f"{ROOT}results/labels/llm_labels.parquet",
        f"{ROOT}results/labels/split_stats.json",
        f"{ROOT}results/labels/annotation/key.csv",
    ]
    if annotation_files():
        targets.append(f"{ROOT}results/labels/label_validation.json")
    targets += [
        f"{ROOT}results/classifier/metrics.json",
        f"{ROOT}results/classifier/threshold_curve.json",
        f"{ROOT}results/finemed/statistics.json",
        f"{ROOT}results/ablation/statistics.json",
    ]
    targets += expand(
        f"{ROOT}results/cpt/{{run}}/{{file}}",
        run=config["cpt"]["runs"],
        file=["summary.json", "perplexity.json"],
    )
    targets += expand(
        f"{ROOT}results/merges/{{run}}-slerp/check.json", run=config["cpt"]["runs"]
    )
    targets += benchmark_targets()
    if FIXTURE:
        targets += [
            f"{ROOT}results/labels/fixture_label_agreement.json",
            f"{ROOT}results/finemed/fixture_precision.json",
        ]
    return targets


def evaluated_model_dir(name):
    """Directory of any model the evaluation stages use: a `models` entry, a CPT run, or a
    run's SLERP merge `<run>-slerp`."""
    if name in MODELS:
        return model_dir(name)
    runs = config["cpt"]["runs"]
    if name in runs or (name.endswith("-slerp") and name[: -len("-slerp")] in runs):
        return f"{ROOT}models/{name}"
    raise ValueError(
        f"config: {name!r} is neither a model, a CPT run nor a merge '<run>-slerp'"
    )


from definemed.benchmarks import group_models, group_tasks

BENCHMARK_GROUPS = {
    g: group_tasks(config, g) for g in ("medical", "general") if group_tasks(config, g)
}


MEDQA_DE = [  # the benchmark tasks that read MedQA-de (paper: one column of Tables 4 and 9)
    t for t in config["benchmarks"]["tasks"].values() if t["data"] == "medqa_de"
]


def benchmark_data(group):
    """Local JSONL files the group's tasks read (fixtures, MedQA-de); none for Hub tasks."""
    tasks = config["benchmarks"]["tasks"]
    return [
        f"{ROOT}data/benchmarks/{t}.jsonl"
        for t in BENCHMARK_GROUPS[group]
        if tasks[t]["data"] != "hub"
    ]


def base_of(name):
    """The instruct model a model descends from (itself for `models` entries)."""
    runs = config["cpt"]["runs"]
    run = name[: -len("-slerp")] if name.endswith("-slerp") else name
    return runs[run]["base"] if run in runs else name


def benchmark_gpus(name):
    return config["benchmarks"]["tensor_parallel"].get(base_of(name), 1)


def benchmark_settings(name):
    """benchmarks section for one model: vLLM tensor parallelism from the model's GPU count."""
    bench = dict(config["benchmarks"], seed=config["seed"])
    bench.pop("tasks"), bench.pop("baselines"), bench.pop("resources")
    if bench["backend"] == "vllm":
        bench["model_args"] = {
            **bench["model_args"],
            "tensor_parallel_size": benchmark_gpus(name),
        }
    return bench


def benchmark_targets():
    return [
        f"{ROOT}results/benchmarks/{m}/{t}.json"
        for g, tasks in BENCHMARK_GROUPS.items()
        for m in group_models(config, g)
        for t in tasks
    ]
