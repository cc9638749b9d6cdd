# Pinned inputs, downloads where the network is, compute jobs offline (README "Running on a
# cluster"; definemed/inputs.py).
#   - Revisions come from inputs.lock.yaml (written by `make lock` with Hub access) where config
#     names a branch; a paper run with any input unpinned or a partial FineWeb2 manifest stops
#     before submitting a job (onstart below); a dry run only warns, so `snakemake -n` plans offline.
#   - Network rules run where the network is: on the submit host (localrules), or, where the site
#     names one, in DEFINEMED_SLURM_FETCH_PARTITION (a data-transfer or serial partition).
#   - Every job runs with the Hub's offline switches (OFFLINE_ENV, set here at parse time, which
#     every job inherits: local jobs from this process, Slurm jobs because their Snakemake re-reads
#     this file); only the Hub fetch rules lift them (HUB_ONLINE in their shell commands).
#   - Hub caches are project-local (work/huggingface/): lm-eval datasets fetched there by
#     fetch_lm_eval_dataset at the lock's commits are what the benchmark jobs read, offline.
from snakemake.exceptions import WorkflowError

from definemed.inputs import (
    LOCK_FILE,
    OFFLINE_ENV,
    hub_inputs,
    input_problems,
    lm_eval_repo_slug,
    pinned_revision,
    read_lock,
    refusal_message,
)

LOCK = read_lock(LOCK_FILE)
HUB_INPUTS = {(i.section, i.key): i for i in hub_inputs(config)}
LM_EVAL_LOCK = LOCK.get("lm_eval", {})
HF_CACHE = os.path.abspath(f"{ROOT}work/huggingface")
os.environ.update(
    OFFLINE_ENV,
    HF_HUB_CACHE=f"{HF_CACHE}/hub",
    HF_DATASETS_CACHE=f"{HF_CACHE}/datasets",
)
HUB_ONLINE = "env " + " ".join(f"-u {k}" for k in OFFLINE_ENV)
# Rules that download from the Hub (they lift the offline switches) ...
HUB_FETCH_RULES = [
    "fetch_model",
    "download_fineweb_shard",
    "sample_medqa",
    "fetch_medalpaca",
    "fetch_lm_eval_dataset",
]
# ... and rules that call a judge's HTTP API (Hub offline, but they need the network too).
API_RULES = ["translate_medqa", "translate_medalpaca", "judge_pairwise", "judge_failure_modes"]


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


INPUT_PROBLEMS = input_problems(config, LOCK)
if INPUT_PROBLEMS:  # a dry run plans anyway; a real run stops in onstart
    logger.warning(refusal_message(INPUT_PROBLEMS))


onstart:
    if INPUT_PROBLEMS:
        raise WorkflowError(refusal_message(INPUT_PROBLEMS))


rule fetch_lm_eval_dataset:
    output:
        f"{ROOT}data/lm_eval/{{slug}}.json",
    log:
        f"{ROOT}logs/lm_eval_data/{{slug}}.log",
    wildcard_constraints:
        slug=one_of([lm_eval_repo_slug(r) for r in LM_EVAL_LOCK.get("datasets", {})]),
    conda:
        "../envs/hub.yaml"
    resources:
        runtime=120,
    params:
        spec=lambda w: as_json(lm_eval_dataset_spec(w.slug)),
    shell:
        "{HUB_ONLINE} python scripts/fetch_lm_eval_dataset.py --spec {params.spec:q}"
        " --out {output} > {log} 2>&1"


rule record_inputs:
    output:
        f"{ROOT}results/inputs.json",
    log:
        f"{ROOT}logs/inputs.log",
    conda:
        "../envs/data.yaml"
    params:
        record=as_json(inputs_record()),
    shell:
        "python scripts/record_inputs.py --record {params.record:q} --out {output} > {log} 2>&1"


# Placement of the network rules (those this config defines).
NETWORK_RULES = [r.name for r in workflow.rules if r.name in HUB_FETCH_RULES + API_RULES]
FETCH_PARTITION = os.environ.get("DEFINEMED_SLURM_FETCH_PARTITION", "")
if FETCH_PARTITION:
    for _name in NETWORK_RULES:
        workflow.get_rule(_name).resources["slurm_partition"] = FETCH_PARTITION
else:  # the `localrules:` directive, for names computed from this config
    workflow.localrules(*NETWORK_RULES)
