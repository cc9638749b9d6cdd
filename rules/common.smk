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
    if FIXTURE:
        targets += [
            f"{ROOT}results/labels/fixture_label_agreement.json",
            f"{ROOT}results/finemed/fixture_precision.json",
        ]
    if "judges" in config:  # response generation and the LLM judges (5.2, 5.3)
        targets += judge_targets()
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


# --- judges (paper 5.2, 5.3, A.7) ---------------------------------------------------------------
def judged_models():
    """Models of Figures 2 and 3 in plot order: generation.models, or the instruct bases and the
    SLERP merges of the runs on generation.corpora (definemed.generation.generation_models).
    """
    from definemed.generation import generation_models

    names = generation_models(config)
    for n in names:
        evaluated_model_dir(n)  # fails early on a name that is no model, run or merge
    return names


def chat_template_dir(name):
    """The base instruct model whose chat template `name` answers in (A.7.1)."""
    from definemed.generation import instruct_base

    return model_dir(instruct_base(config, name))


def display_names(names):
    from definemed.config import display_name

    return {n: display_name(config, n) for n in names}


def judge_model_input(stage):
    """The local judge's model folder (backend local), else nothing."""
    judge = stage["judge"]
    return [model_dir(judge["model"])] if judge["backend"] == "local" else []


def generation_files():
    return expand(f"{ROOT}results/generations/{{model}}.jsonl", model=judged_models())


def judge_targets():
    return [
        f"{ROOT}results/judges/cost_estimate.json",
        f"{ROOT}results/judges/pairwise/winrate.json",
        f"{ROOT}results/judges/failure_modes/counts.json",
    ] + generation_files()
