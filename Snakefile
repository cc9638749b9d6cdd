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
# cost estimate) run on the submit host instead of queueing as cluster jobs. corpus_statistics
# stays a cluster job: it reads every FineMed and score shard (login nodes stop long processes).
localrules:
    table2,
    table5,
    table3,
    table6,
    table7,
    table8,
    table10,
    benchmark_table,
    rulegraph,
    figure1,
    figure2,
    figure3,
    figure4,
    figure5,
    model_effects,
    reproduction_report,
    evaluate_labels,
    false_positive_sheet,
    judge_cost_estimate,
    pairwise_winrate,
    failure_mode_counts,


rule all:
    default_target: True
    input:
        all_targets(),
