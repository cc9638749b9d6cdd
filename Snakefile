# DeFineMed: FineWeb2 German -> LLM labels -> medical classifier -> FineMed-de -> continual
# pre-training -> SLERP merges -> benchmarks and judges -> the paper's tables and figures.
#
# Paper run:  snakemake --profile profiles/slurm            (config.yaml)
# Miniature:  snakemake --profile profiles/miniature        (config/miniature.yaml, CPU, minutes)


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/fineweb.smk"
include: "rules/labelling.smk"
include: "rules/classifier.smk"
include: "rules/finemed.smk"
include: "rules/cpt.smk"
include: "rules/benchmarks.smk"
include: "rules/judges.smk"
include: "rules/paper.smk"


rule all:
    default_target: True
    input:
        all_targets(),


# CI: each job's python from the venv of its rule's env (make rule-venvs; README "Environments").
if os.environ.get("DEFINEMED_RULE_VENVS"):
    from definemed.envs import run_rules_in_venvs

    run_rules_in_venvs(
        workflow.rules,
        os.environ["DEFINEMED_RULE_VENVS"],
        os.environ.get("DEFINEMED_RULE_ENV_RECORD", ".snakemake/rule_envs.tsv"),
    )
