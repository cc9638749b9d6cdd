# Every model in config becomes a local folder models/<name>: fetched from the Hub at a pinned
# revision, or built locally as a tiny model for the miniature. Downstream rules see only paths.


rule fetch_model:
    output:
        directory(f"{ROOT}models/{{model}}"),
    log:
        f"{ROOT}logs/models/{{model}}.log",
    benchmark:
        f"{ROOT}benchmarks/models/{{model}}.tsv"
    wildcard_constraints:
        model=one_of(HUB_MODELS),
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/hub.yaml"
    resources:
        runtime=240,
    params:
        repo=lambda w: MODELS[w.model]["hub"]["repo"],
        revision=lambda w: pinned("models", w.model),
    shell:
        "env -u HF_HUB_OFFLINE -u HF_DATASETS_OFFLINE -u TRANSFORMERS_OFFLINE python scripts/fetch_model.py --name {wildcards.model} --repo {params.repo}"
        " --revision {params.revision} --out {output} > {log} 2>&1"


rule build_tiny_model:
    input:
        start_from=lambda w: tiny_start_from(w.model),
    output:
        directory(f"{ROOT}models/{{model}}"),
    log:
        f"{ROOT}logs/models/{{model}}.log",
    benchmark:
        f"{ROOT}benchmarks/models/{{model}}.tsv"
    wildcard_constraints:
        model=one_of(TINY_MODELS),
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/transformers.yaml"
    threads: config["threads"]
    params:
        spec=lambda w: as_json({k: v for k, v in MODELS[w.model].items() if k != "display"}),
        labelling=with_template_date(config["labelling"]),
        fixture=as_json(config["fineweb"].get("fixture", {})),
        seed=config["seed"],
        start_from=lambda w, input: (f"--start-from {input.start_from}" if input.start_from else ""),
    shell:
        "python scripts/build_tiny_model.py --name {wildcards.model} --spec {params.spec:q}"
        " --labelling {params.labelling:q} --fixture {params.fixture:q} --seed {params.seed}"
        " {params.start_from} --threads {threads} --out {output} > {log} 2>&1"


# A baseline that is a SLERP of two configured models (the miniature's BioMistral-7B-SLERP), with
# the merge section's A.4 schedule: the same script and checks as the CPT merges.
rule merge_baseline:
    input:
        base=lambda w: model_dir(MODELS[w.model]["merge"]["base"]),
        other=lambda w: model_dir(MODELS[w.model]["merge"]["model"]),
    output:
        model=directory(f"{ROOT}models/{{model}}"),
        config=f"{ROOT}results/merges/{{model}}/mergekit.yml",
        check=f"{ROOT}results/merges/{{model}}/check.json",
    log:
        f"{ROOT}logs/models/{{model}}.log",
    benchmark:
        f"{ROOT}benchmarks/models/{{model}}.tsv"
    wildcard_constraints:
        model=one_of(MERGED_MODELS),
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/merge.yaml"
    threads: config["threads"]
    resources:
        **stage_resources(config["merge"]["resources"]),
    params:
        settings=with_template_date(config["merge"]),
    shell:
        "python scripts/merge_slerp.py --base {input.base} --cpt {input.other}"
        " --settings {params.settings:q} --threads {threads} --out {output.model}"
        " --out-config {output.config} --out-check {output.check} > {log} 2>&1"
