# What every stage needs: the config's validation, output paths, model folders, the FineWeb2 shards,
# the run's targets and cluster resources. A helper of one stage lives in rules/helpers/<stage>.smk,
# which that stage's rules file includes (all rules files share one namespace).
import os
import re
import json

from snakemake.utils import min_version, validate

min_version("9.0")


validate(config, schema="../schemas/config.schema.yaml")

ROOT = config["root"]  # "" (paper run) or "miniature/": every output path starts with it
MODELS = config["models"]
HUB_MODELS = [m for m, spec in MODELS.items() if "hub" in spec]
TINY_MODELS = [m for m, spec in MODELS.items() if "tiny" in spec]
MERGED_MODELS = [m for m, spec in MODELS.items() if "merge" in spec]
FIXTURE = config["fineweb"]["source"] == "fixture"


NEVER = "(?!)"  # a wildcard constraint nothing matches: switches a rule off for this run
# Jobs on the way to the CPT models (data, labels, classifier, FineMed, CPT, merges) start before
# the evaluations that can wait: the long chain keeps going while evaluations fill free cores.
UPSTREAM_PRIORITY = 10
SHARD_NAME = "[^/]+"  # shard names come from the manifest; the download script checks them


def one_of(names):
    """Wildcard constraint matching exactly `names` (nothing when empty)."""
    return "|".join(re.escape(n) for n in names) if names else NEVER


def as_json(obj):
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def with_template_date(section):
    """A stage's settings as JSON, with the day chat templates print (definemed/chat.py)."""
    return as_json({**section, "chat_template_date": config["chat_template_date"]})


def model_dir(name):
    if name not in MODELS:
        raise ValueError(f"config: model {name!r} is not defined under 'models'")
    return f"{ROOT}models/{name}"


def tiny_start_from(name):
    """The built model a tiny model starts from (models.<name>.tiny.start_from), or none."""
    start = MODELS[name].get("tiny", {}).get("start_from")
    return [model_dir(start)] if start else []


def shard_names():
    if FIXTURE:
        return [f"train-000_{i:05d}" for i in range(config["fineweb"]["fixture"]["shards"])]
    from definemed.dataset.fineweb import read_manifest

    names = [e.shard for e in read_manifest(config["fineweb"]["manifest"])]
    subset = config["fineweb"]["shard_subset"]  # a deliberate trial, recorded in results/inputs.json
    return names[:subset] if subset else names


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
    targets += expand(f"{ROOT}results/merges/{{run}}-slerp/check.json", run=config["cpt"]["runs"])
    targets += benchmark_targets()  # rules/helpers/benchmarks.smk
    if FIXTURE:
        targets += [
            f"{ROOT}results/labels/fixture_label_agreement.json",
            f"{ROOT}results/finemed/fixture_precision.json",
        ]
    if "judges" in config:  # response generation and the LLM judges (5.2, 5.3)
        targets += judge_targets()  # rules/helpers/judges.smk
    targets += paper_targets()  # rules/helpers/paper.smk
    targets += input_targets()  # rules/helpers/inputs.smk
    return targets


def evaluated_model_dir(name):
    """Directory of any model the evaluation stages use: a `models` entry, a CPT run, or a
    run's SLERP merge `<run>-slerp`."""
    if name in MODELS:
        return model_dir(name)
    runs = config["cpt"]["runs"]
    if name in runs or (name.endswith("-slerp") and name[: -len("-slerp")] in runs):
        return f"{ROOT}models/{name}"
    raise ValueError(f"config: {name!r} is neither a model, a CPT run nor a merge '<run>-slerp'")


def evaluated_models():
    """Every name a table can show: models, CPT runs and their merges."""
    runs = list(config["cpt"]["runs"])
    return [*MODELS, *runs, *(f"{r}-slerp" for r in runs)]


def display_names(names=None):
    """Model key -> its name as the paper writes it (all evaluated models by default)."""
    from definemed.config import display_name

    return {n: display_name(config, n) for n in (evaluated_models() if names is None else names)}


# Cluster resources (profiles/slurm; README "Running on a cluster"). Every stage that needs more
# than the profile's default-resources has a config `resources` mapping:
#   gpu: GPUs per node (0: a CPU job)   nodes: nodes (default 1)   runtime: minutes per job
#   mem_mb: memory per node             cpus_per_task: CPUs per task (default config threads)
#   tasks: launcher tasks of a multi-node job (train_cpt; default: one per node)
# and the stage's rules request `**stage_resources(<section>["resources"])` as resources. Site settings
# come from the environment only:
#   DEFINEMED_SLURM_GPU_MODEL      gres type of the GPUs (default a100; "" for untyped --gres=gpu:N)
#   DEFINEMED_SLURM_GPU_PARTITION  partition of GPU jobs (default: the profile's partition)
#   DEFINEMED_SLURM_MAX_RUNTIME    the partition's time limit in minutes (default 1440): longer
#                                  requests become jobs of that length that resume when retried
# (DEFINEMED_SLURM_ACCOUNT and DEFINEMED_SLURM_PARTITION are read by profiles/slurm itself.)
def slurm_site():
    env = os.environ
    return {
        "gpu_model": env.get("DEFINEMED_SLURM_GPU_MODEL", "a100"),
        "gpu_partition": env.get("DEFINEMED_SLURM_GPU_PARTITION", ""),
        "max_runtime": int(env.get("DEFINEMED_SLURM_MAX_RUNTIME") or 1440),
    }


def stage_resources(spec, threads=None):
    """Snakemake resources of one job of a stage from its config `resources` mapping (see above).

    GPUs are requested per node as --gres=gpu:<model>:<n> (the plugin's `gpu` would ask for a
    total that Slurm may spread unevenly over nodes); the runtime is capped at the site's limit.
    """
    site = slurm_site()
    gpus = int(spec.get("gpu", 0))
    resources = {
        "nodes": int(spec.get("nodes", 1)),
        "runtime": min(int(spec.get("runtime", 60)), site["max_runtime"]),
        "mem_mb": int(spec.get("mem_mb", 8000)),
        "cpus_per_task": int(spec.get("cpus_per_task", threads or config["threads"])),
        "gres": "",
        "tasks_per_gpu": 0,  # the plugin would otherwise derive --ntasks-per-gpu from tasks
    }
    if gpus:
        model = site["gpu_model"]
        resources["gres"] = f"gpu:{model}:{gpus}" if model else f"gpu:{gpus}"
        if site["gpu_partition"]:
            resources["slurm_partition"] = site["gpu_partition"]
    return resources


# Judge calls: the MedQA-de translation (rules/benchmarks.smk) and the judge stages
# (rules/judges.smk) both send them.
def judge_model_input(stage):
    """The local judge's model folder (backend local), else nothing."""
    judge = stage["judge"]
    return [model_dir(judge["model"])] if judge["backend"] == "local" else []


def judge_rules_input(stage):
    """The rubric judge's rules (backend rubric), else nothing: edited rules rerun the stage (their
    answers are cached under the rules' digest: unchanged rules stay cached)."""
    return ["definemed/judges/rubric.py"] if stage["judge"]["backend"] == "rubric" else []


def prompt_files(*kinds):
    """The Jinja prompt files a judge stage renders (prompts/<kind>.{system,user}.jinja): inputs, so
    an edited prompt reruns the stage (its answers are cached by request body: unchanged calls stay
    free)."""
    return [f"prompts/{kind}.{part}.jinja" for kind in kinds for part in ("system", "user")]
