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
# Jobs on the way to the CPT models (data, labels, classifier, FineMed, CPT, merges) start before
# the evaluations that can wait: the long chain keeps going while evaluations fill free cores.
UPSTREAM_PRIORITY = 10
SHARD_NAME = (
    "[^/]+"  # shard names come from the manifest; the download script checks them
)


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


def shard_names():
    if FIXTURE:
        return [
            f"train-000_{i:05d}" for i in range(config["fineweb"]["fixture"]["shards"])
        ]
    from definemed.fineweb import read_manifest

    names = [e.shard for e in read_manifest(config["fineweb"]["manifest"])]
    subset = config["fineweb"][
        "shard_subset"
    ]  # a deliberate trial, recorded in results/inputs.json
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
    if "judges" in config:  # response generation and the LLM judges (5.2, 5.3)
        targets += judge_targets()
    targets += paper_targets()
    targets += input_targets()  # rules/inputs.smk
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


def benchmark_resources(name):
    """Slurm resources of one evaluation job: one GPU, or the model's tensor-parallel GPUs (vLLM)."""
    spec = dict(config["benchmarks"]["resources"])
    if config["benchmarks"]["backend"] == "vllm":
        spec["gpu"] = benchmark_gpus(name)
    return stage_resources(spec)


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


def cpt_job_resources(run, attempt=1):
    """stage_resources of a CPT run, launched as one task per node: more than one task takes
    the plugin's `mpi` route (the job's shell starts `srun`, scripts/launch_cpt.sh). A
    `retry_runtime` entry sets the runtime of attempts after the first (resubmissions that
    resume from checkpoints, e.g. in a longer queue); default: `runtime`."""
    spec = dict(cpt_resources(run))
    if attempt > 1 and "retry_runtime" in spec:
        spec["runtime"] = spec["retry_runtime"]
    resources = stage_resources(spec)
    tasks = int(spec.get("tasks", resources["nodes"]))
    resources.update(tasks=tasks, mpi="srun" if tasks > 1 else "")
    return resources


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


def display_names(names=None):
    """Model key -> its name as the paper writes it (all evaluated models by default)."""
    from definemed.config import display_name

    return {
        n: display_name(config, n)
        for n in (evaluated_models() if names is None else names)
    }


def judge_model_input(stage):
    """The local judge's model folder (backend local), else nothing."""
    judge = stage["judge"]
    return [model_dir(judge["model"])] if judge["backend"] == "local" else []


def prompt_files(*kinds):
    """The Jinja prompt files a judge stage renders (prompts/<kind>.{system,user}.jinja): inputs, so
    an edited prompt reruns the stage (its answers are cached by request body: unchanged calls stay
    free)."""
    return [
        f"prompts/{kind}.{part}.jinja" for kind in kinds for part in ("system", "user")
    ]


def generation_files():
    return expand(f"{ROOT}results/generations/{{model}}.jsonl", model=judged_models())


def judge_targets():
    return [
        f"{ROOT}results/judges/cost_estimate.json",
        f"{ROOT}results/judges/pairwise/winrate.json",
        f"{ROOT}results/judges/failure_modes/counts.json",
    ] + generation_files()


# ---- the paper's tables and figures (rules/paper.smk)

PAPER = config["paper"]
REPORTED_TABLES = ["table4", "table8", "table9", "table11"]


def evaluated_models():
    """Every name a table can show: models, CPT runs and their merges."""
    runs = list(config["cpt"]["runs"])
    return [*MODELS, *runs, *(f"{r}-slerp" for r in runs)]


def benchmark_tables():
    """Tables 4, 9, 11: {table: {rows: [model], columns: [task]}}, rows derived from config
    (definemed.benchmarks.table_rows), columns the benchmark tasks of the table's group.
    """
    from definemed.benchmarks import table_rows

    groups = {"table4": "medical", "table9": "medical", "table11": "general"}
    return {
        table: {"rows": table_rows(config, table), "columns": BENCHMARK_GROUPS[group]}
        for table, group in groups.items()
        if group in BENCHMARK_GROUPS and table_rows(config, table)
    }


def benchmark_file(model, task):
    return f"{ROOT}results/benchmarks/{model}/{task}.json"


def benchmark_table_inputs(table):
    spec = benchmark_tables()[table]
    return [benchmark_file(m, t) for m in spec["rows"] for t in spec["columns"]]


def benchmark_headers(table):
    """Task key -> the column header the paper prints (paper.reported_columns)."""
    return {
        task: header
        for header, task in PAPER["reported_columns"].get(table, {}).items()
    }


def table8_rows():
    """(printed name, summary, training log) per Table 8 run: the paper names a run by its base."""
    from definemed.config import display_name

    runs = config["cpt"]["runs"]
    return [
        (
            display_name(config, runs[run]["base"]),
            f"{ROOT}results/cpt/{run}/summary.json",
            f"{ROOT}results/cpt/{run}/training_log.jsonl",
        )
        for run in PAPER["table8"]["runs"]
    ]


def run_cluster(run):
    """Table 8's Cluster column: the run's own `cluster`, else cpt.cluster."""
    return config["cpt"]["runs"][run].get("cluster", config["cpt"]["cluster"])


def table8_row_args():
    import shlex

    return " ".join(
        f"--row {shlex.quote(name)} {shlex.quote(run_cluster(run))} {summary} {log}"
        for run, (name, summary, log) in zip(PAPER["table8"]["runs"], table8_rows())
    )


def scaling_files():
    scaling = PAPER.get("scaling")
    if not scaling:
        return []
    return expand(
        f"{ROOT}results/scaling/{{run}}/nodes-{{nodes}}.json",
        run=scaling["runs"],
        nodes=scaling["nodes"],
    )


def claims_spec():
    """What the claims section (definemed.claims) reads: the FineMed families, the ablation run,
    the roles of paper.claims, the task groups and baselines."""
    runs = config["cpt"]["runs"]
    families = [
        {"run": r, "base": s["base"], "cpt": r, "merge": f"{r}-slerp"}
        for r, s in runs.items()
        if s["corpus"] == "finemed"
    ]
    roles = PAPER.get("claims", {})
    focus = runs.get(roles.get("focus_run"), {}).get("base")
    ablation = [
        {"run": r, "base": s["base"], "cpt": r, "merge": f"{r}-slerp"}
        for r, s in runs.items()
        if s["corpus"] == "fineweb2_random" and s["base"] == focus
    ]
    return {
        "families": families,
        "ablation": ablation[0] if ablation else None,
        "medical_tasks": BENCHMARK_GROUPS.get("medical", []),
        "general_tasks": BENCHMARK_GROUPS.get("general", []),
        "medical_baselines": config["benchmarks"]["baselines"]["medical"],
        **roles,
    }


def claims_inputs():
    """Result files the claims read beyond the compared tables: held-out perplexities, the judges,
    every family's benchmark results and training logs."""
    spec = claims_spec()
    fams = spec["families"] + ([spec["ablation"]] if spec["ablation"] else [])
    files = [f"{ROOT}results/cpt/{f['run']}/perplexity.json" for f in fams]
    files += [
        f"{ROOT}results/cpt/{f['run']}/{n}"
        for f in fams
        for n in ("summary.json", "training_log.jsonl")
    ]
    models = {m for f in fams for m in (f["base"], f["cpt"], f["merge"])} | set(
        spec["medical_baselines"]
    )
    from definemed.benchmarks import group_models

    for group in ("medical", "general"):
        evaluated = models & set(group_models(config, group))
        files += [
            benchmark_file(m, t)
            for m in sorted(evaluated)
            for t in spec[f"{group}_tasks"]
        ]
    if "judges" in config:
        files += [
            f"{ROOT}results/judges/pairwise/winrate.json",
            f"{ROOT}results/judges/failure_modes/counts.json",
        ]
    return sorted(set(files))


def reproduction_inputs():
    """The reported CSVs and every result the reproduction report compares with them."""
    inputs = [f"paper/reported/{t}.csv" for t in REPORTED_TABLES] + claims_inputs()
    inputs += [f for _, summary, log in table8_rows() for f in (summary, log)]
    for table, spec in benchmark_tables().items():
        if table in PAPER["reported_columns"]:
            tasks = [
                t
                for t in PAPER["reported_columns"][table].values()
                if t in spec["columns"]
            ]
            inputs += [benchmark_file(m, t) for m in spec["rows"] for t in tasks]
    return inputs


def table3_models():
    """Table 3: the instruct bases the FineMed-de runs train, in cpt.runs' order."""
    runs = config["cpt"]["runs"].values()
    return list(dict.fromkeys(s["base"] for s in runs if s["corpus"] == "finemed"))


def table3_model_args():
    import shlex
    from definemed.config import display_name

    return " ".join(
        f"--model {shlex.quote(display_name(config, m))} {evaluated_model_dir(m)}"
        for m in table3_models()
    )


def false_positive_kinds():
    """Table 6's filled sheet: the miniature's (kinds from the fixture), else
    label_validation.false_positive_kinds once someone has named the kinds (None: no Table 6).
    """
    validation = config["label_validation"]
    if "simulate_annotators" in validation:
        return f"{ROOT}results/labels/annotation/false_positives.csv"
    return validation.get("false_positive_kinds")


def paper_targets():
    """Every table and figure whose inputs this workflow makes: Tables 2, 4, 5 (once annotated),
    8, 9, 11, Figures 2-5 and the reproduction report."""
    targets = expand(
        f"{ROOT}paper/tables/{{table}}.{{ext}}",
        table=["table2", "table3", "table7"],
        ext=["md", "tex"],
    )
    if annotation_files():
        targets += expand(f"{ROOT}paper/tables/table5.{{ext}}", ext=["md", "tex"])
        targets.append(f"{ROOT}results/labels/annotation/false_positives.csv")
    if annotation_files() and false_positive_kinds():
        targets += expand(f"{ROOT}paper/tables/table6.{{ext}}", ext=["md", "tex"])
    if PAPER["table8"]["runs"]:
        targets += expand(f"{ROOT}paper/tables/table8.{{ext}}", ext=["md", "tex"])
    targets += expand(
        f"{ROOT}paper/figures/{{fig}}.{{ext}}",
        fig=["figure1", "figure4"],
        ext=["pdf", "png"],
    )
    if scaling_files():
        targets += expand(f"{ROOT}paper/figures/figure5.{{ext}}", ext=["pdf", "png"])
    targets += paper_benchmark_targets()
    if "judges" in config:
        targets += paper_judge_targets()
    targets.append(f"{ROOT}paper/reproduction.md")
    return targets


def paper_benchmark_targets():
    """Tables 4, 9, 11."""
    return expand(
        f"{ROOT}paper/tables/{{table}}.{{ext}}",
        table=list(benchmark_tables()),
        ext=["md", "tex"],
    )


def paper_judge_targets():
    """Figures 2 and 3 and Table 10 (judges)."""
    return expand(
        f"{ROOT}paper/figures/{{fig}}.{{ext}}",
        fig=["figure2", "figure3"],
        ext=["pdf", "png"],
    ) + expand(f"{ROOT}paper/tables/table10.{{ext}}", ext=["md", "tex"])


# ---- pinned inputs (rules/inputs.smk sets LOCK, HUB_INPUTS, LM_EVAL_LOCK)


def pinned(section, key):
    """The commit a fetch rule downloads (config's SHA, else the lock's)."""
    return pinned_revision(LOCK, HUB_INPUTS[(section, key)])


def lm_eval_dataset_files(group):
    """The fetched lm-eval datasets the group's Hub tasks read (records of fetch_lm_eval_dataset)."""
    tasks = config["benchmarks"]["tasks"]
    repos = {
        repo
        for t in BENCHMARK_GROUPS[group]
        if tasks[t]["data"] == "hub"
        for repo in LM_EVAL_LOCK.get("tasks", {}).get(tasks[t]["lm_eval_task"], [])
    }
    return [f"{ROOT}data/lm_eval/{lm_eval_repo_slug(r)}.json" for r in sorted(repos)]


def lm_eval_dataset_spec(slug):
    repos = {lm_eval_repo_slug(r): r for r in LM_EVAL_LOCK["datasets"]}
    return {"repo": repos[slug], **LM_EVAL_LOCK["datasets"][repos[slug]]}


def input_targets():
    return [f"{ROOT}results/inputs.json"]


def inputs_record():
    """What results/inputs.json records: every pinned input and the FineWeb2 files the run reads."""
    record = {
        i.where: {"repo": i.repo, "revision": pinned(i.section, i.key)}
        for i in HUB_INPUTS.values()
    }
    record["lm_eval"] = LM_EVAL_LOCK
    if not FIXTURE:
        from definemed.fineweb import read_manifest

        listed = len(read_manifest(config["fineweb"]["manifest"]))
        record["fineweb_files"] = {
            "manifest": config["fineweb"]["manifest"],
            "listed": listed,
            "read": len(SHARDS),
            "shard_subset": config["fineweb"]["shard_subset"],
        }
    return record
