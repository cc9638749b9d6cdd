# Helpers of rules/cpt.smk: each run's corpus and its jobs' cluster resources.


def corpus_parts(run):
    corpus = config["cpt"]["runs"][run]["corpus"]
    if corpus == "finemed":
        return expand(f"{ROOT}results/finemed/{{shard}}.parquet", shard=SHARDS)
    return [f"{ROOT}results/ablation/fineweb2_random.parquet"]


def cpt_resources(run):
    """cpt.resources with the run's own overrides (e.g. the 24B model's node count)."""
    run_spec = config["cpt"]["runs"][run]
    return {**config["cpt"]["resources"], **run_spec.get("resources", {})}


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
