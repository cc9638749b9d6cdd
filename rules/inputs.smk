# Pinned inputs, downloads where the network is, compute jobs offline (README "Running on a
# cluster"; definemed/inputs.py).
#   - Revisions come from inputs.lock.yaml (written by `make lock` with Hub access) where config
#     names a branch; a paper run with any input unpinned or a partial FineWeb2 manifest stops
#     before submitting a job (onstart below); a dry run only warns, so `snakemake -n` plans offline.
#   - Network rules run where the network is: on the submit host (localrules), or, where the site
#     names one, in DEFINEMED_SLURM_FETCH_PARTITION (a data-transfer or serial partition).
#   - Every job runs with the Hub's offline switches (OFFLINE_ENV, set here at parse time, which
#     every job inherits: local jobs from this process, Slurm jobs because their Snakemake re-reads
#     this file); only the Hub fetch rules lift them (`env -u ...` in their shell commands).
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
# Rules that download from the Hub (they lift the offline switches) ...
HUB_FETCH_RULES = [
    "fetch_model",
    "download_fineweb_shard",
    "sample_medqa",
    "fetch_medalpaca",
    "fetch_lm_eval_dataset",
]
# ... and rules that call a judge's HTTP API (Hub offline, but they need the network too).
API_RULES = [
    "translate_medqa",
    "translate_medalpaca",
    "judge_pairwise",
    "judge_failure_modes",
]


# The inputs stage's helpers (kept apart: `snakemake --lint` wants no functions beside rules).
include: "helpers/inputs.smk"


INPUT_PROBLEMS = input_problems(config, LOCK)
# a dry run plans anyway, with a warning; a real run stops in onstart, the message said once
if INPUT_PROBLEMS and workflow.output_settings.dryrun:
    logger.warning(refusal_message(INPUT_PROBLEMS, dry_run=True))


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
        "env -u HF_HUB_OFFLINE -u HF_DATASETS_OFFLINE -u TRANSFORMERS_OFFLINE python scripts/fetch_lm_eval_dataset.py --spec {params.spec:q}"
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
