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
include: "rules/inputs.smk"  # last: pins, offline switches, places the network rules above


# Small CPU jobs (tables, figures, the reproduction report, label and judge statistics, the judge
# cost estimate) carry `localrule: True`: they run on the submit host instead of queueing as cluster
# jobs. corpus_statistics stays a cluster job: it reads every FineMed and score shard (login nodes
# stop long processes).


rule all:
    default_target: True
    input:
        all_targets(),
