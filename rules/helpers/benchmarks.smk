# Helpers of rules/benchmarks.smk: the task groups, each job's data, settings and resources,
# the lm-eval datasets a group reads and the benchmark targets.

from definemed.evaluation.benchmarks import check_backend_settings, group_models, group_tasks

check_backend_settings(config["benchmarks"])  # at parse time: before any job starts

BENCHMARK_GROUPS = {g: group_tasks(config, g) for g in ("medical", "general") if group_tasks(config, g)}


MEDQA_DE = [  # the benchmark tasks that read MedQA-de (paper: one column of Tables 4 and 9)
    t for t in config["benchmarks"]["tasks"].values() if t["data"] == "medqa_de"
]


def benchmark_data(group):
    """Local JSONL files the group's tasks read (fixtures, MedQA-de); none for Hub tasks."""
    tasks = config["benchmarks"]["tasks"]
    return [f"{ROOT}data/benchmarks/{t}.jsonl" for t in BENCHMARK_GROUPS[group] if tasks[t]["data"] != "hub"]


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
    # lm-eval renders the chat templates itself: the day they print (definemed/chat.py); without
    # templates the job's settings take the schema's day, which nothing reads
    if bench["apply_chat_template"]:
        bench["chat_template_date"] = config["chat_template_date"]
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


def lm_eval_dataset_files(group):  # LM_EVAL_LOCK: rules/inputs.smk (read at DAG time)
    """The fetched lm-eval datasets the group's Hub tasks read (records of fetch_lm_eval_dataset)."""
    tasks = config["benchmarks"]["tasks"]
    repos = {
        repo
        for t in BENCHMARK_GROUPS[group]
        if tasks[t]["data"] == "hub"
        for repo in LM_EVAL_LOCK.get("tasks", {}).get(tasks[t]["lm_eval_task"], [])
    }
    return [f"{ROOT}data/lm_eval/{lm_eval_repo_slug(r)}.json" for r in sorted(repos)]
