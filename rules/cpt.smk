# Continual pre-training (paper 4.2, A.3): each run's corpus tokenised with its base model's own
# tokenizer and packed into fixed-length sequences.

CPT = config["cpt"]
RUNS = CPT["runs"]


# The cpt stage's helpers (kept apart: `snakemake --lint` wants no functions beside rules).
include: "helpers/cpt.smk"


rule pack_corpus:
    input:
        parts=lambda w: corpus_parts(w.run),
        tokenizer=lambda w: model_dir(RUNS[w.run]["base"]),
    output:
        directory(f"{ROOT}results/packed/{{run}}"),
    log:
        f"{ROOT}logs/packed/{{run}}.log",
    benchmark:
        f"{ROOT}benchmarks/packed/{{run}}.tsv"
    wildcard_constraints:
        run=one_of(RUNS),
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/transformers.yaml"
    resources:
        runtime=720,
        mem_mb=64000,
    params:
        length=CPT["sequence_length"],
        seed=config["seed"],
        heldout=CPT["heldout_fraction"],
        window=CPT["pack_window_documents"],
    shell:
        "python scripts/pack_corpus.py --tokenizer {input.tokenizer} --length {params.length}"
        " --seed {params.seed} --heldout-fraction {params.heldout}"
        " --window-documents {params.window} --out {output} {input.parts} > {log} 2>&1"


rule train_cpt:
    input:
        packed=f"{ROOT}results/packed/{{run}}",
        base=lambda w: model_dir(RUNS[w.run]["base"]),
    output:
        model=directory(f"{ROOT}models/{{run}}"),
        log=f"{ROOT}results/cpt/{{run}}/training_log.jsonl",
        summary=f"{ROOT}results/cpt/{{run}}/summary.json",
    log:
        f"{ROOT}logs/cpt/{{run}}.log",
    benchmark:
        f"{ROOT}benchmarks/cpt/{{run}}.tsv"
    wildcard_constraints:
        run=one_of(RUNS),
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/train.yaml"
    threads: config["threads"]
    resources:
        # gres per node, nodes, tasks (one per node) and the `mpi` route when tasks > 1
        nodes=lambda w: cpt_job_resources(w.run)["nodes"],
        tasks=lambda w: cpt_job_resources(w.run)["tasks"],
        mpi=lambda w: cpt_job_resources(w.run)["mpi"],
        gres=lambda w: cpt_job_resources(w.run)["gres"],
        tasks_per_gpu=lambda w: cpt_job_resources(w.run)["tasks_per_gpu"],
        runtime=lambda w, attempt: cpt_job_resources(w.run, attempt)["runtime"],
        mem_mb=lambda w: cpt_job_resources(w.run)["mem_mb"],
        cpus_per_task=lambda w: cpt_job_resources(w.run)["cpus_per_task"],
    params:
        # what shapes the training; run names, display names and resources do not
        settings=as_json({k: v for k, v in CPT.items() if k not in ("runs", "resources")}),
        seed=config["seed"],
        launcher=lambda w: RUNS[w.run].get("launcher", CPT["launcher"]),
        per_node=lambda w: max(1, cpt_resources(w.run).get("gpu", 0)),
        # checkpoints outside the outputs: Snakemake (and the Slurm plugin) delete a failed
        # job's outputs, and a job killed at its time limit must resume from them
        work_dir=lambda w: f"{ROOT}work/cpt/{w.run}",
    shell:
        "scripts/launch_cpt.sh {params.per_node} {params.launcher} scripts/train_cpt.py --run {wildcards.run} --packed {input.packed}"
        " --base {input.base} --settings {params.settings:q} --seed {params.seed}"
        " --work-dir {params.work_dir} --threads {threads} --out {output.model}"
        " --out-log {output.log} --out-summary {output.summary} > {log} 2>&1"


rule heldout_perplexity:
    input:
        finemed=expand(f"{ROOT}results/finemed/{{shard}}.parquet", shard=SHARDS),
        general=f"{ROOT}data/fineweb2/{SHARDS[0]}.parquet",
        base=lambda w: model_dir(RUNS[w.run]["base"]),
        cpt=f"{ROOT}models/{{run}}",
    output:
        f"{ROOT}results/cpt/{{run}}/perplexity.json",
    log:
        f"{ROOT}logs/cpt/{{run}}.perplexity.log",
    benchmark:
        f"{ROOT}benchmarks/cpt/{{run}}.perplexity.tsv"
    wildcard_constraints:
        run=one_of(RUNS),
    conda:
        "../envs/transformers.yaml"
    threads: config["threads"]
    resources:
        **stage_resources(
            {
                "gpu": 1 if CPT["resources"].get("gpu") else 0,
                "runtime": 120,
                "mem_mb": 32000,
            }
        ),
    params:
        seed=config["seed"],
        heldout=CPT["heldout_fraction"],
        length=CPT["sequence_length"],
    shell:
        "python scripts/heldout_perplexity.py --base {input.base} --cpt {input.cpt}"
        " --seed {params.seed} --heldout-fraction {params.heldout} --max-length {params.length}"
        " --threads {threads} --general-shard {input.general} --out {output} {input.finemed} > {log} 2>&1"


rule merge_slerp:
    input:
        base=lambda w: model_dir(RUNS[w.run]["base"]),
        cpt=f"{ROOT}models/{{run}}",
    output:
        model=directory(f"{ROOT}models/{{run}}-slerp"),
        config=f"{ROOT}results/merges/{{run}}-slerp/mergekit.yml",
        check=f"{ROOT}results/merges/{{run}}-slerp/check.json",
    log:
        f"{ROOT}logs/merges/{{run}}-slerp.log",
    benchmark:
        f"{ROOT}benchmarks/merges/{{run}}-slerp.tsv"
    wildcard_constraints:
        run=one_of(RUNS),
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/merge.yaml"
    threads: config["threads"]
    resources:
        **stage_resources(config["merge"]["resources"]),
    params:
        settings=with_template_date(config["merge"]),
    shell:
        "python scripts/merge_slerp.py --base {input.base} --cpt {input.cpt}"
        " --settings {params.settings:q} --threads {threads} --out {output.model}"
        " --out-config {output.config} --out-check {output.check} > {log} 2>&1"
