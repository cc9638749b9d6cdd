# Labelling stage (paper 3.2, A.1, A.1.1, Table 2, Table 5): a seeded sample of FineWeb2-de,
# zero-shot labels from an instruction-tuned LLM, their human validation, and the train/test split.

LABELLING = config["labelling"]
VALIDATION = config["label_validation"]
LABELS = f"{ROOT}results/labels"


rule sample_documents:
    input:
        shard_files(),
    output:
        f"{LABELS}/sample.parquet",
    log:
        f"{ROOT}logs/labels/sample_documents.log",
    benchmark:
        f"{ROOT}benchmarks/labels/sample_documents.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/data.yaml"
    params:
        n=LABELLING["sample_size"],
        seed=config["seed"],
    shell:
        "python scripts/sample_documents.py --n {params.n} --seed {params.seed}" " --out {output} {input} > {log} 2>&1"


rule label_documents:
    input:
        sample=f"{LABELS}/sample.parquet",
        model=model_dir(LABELLING["model"]),
    output:
        f"{LABELS}/llm_labels.parquet",
    log:
        f"{ROOT}logs/labels/label_documents.log",
    benchmark:
        f"{ROOT}benchmarks/labels/label_documents.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        ("../envs/vllm.yaml" if LABELLING["backend"] == "vllm" else "../envs/transformers.yaml")
    threads: config["threads"]
    resources:
        **stage_resources(LABELLING["resources"]),
    params:
        settings=with_template_date(LABELLING),
        # finished chunks live outside the declared output, so a killed job resumes from them
        work_dir=f"{ROOT}work/labels/{LABELLING['model']}",
    shell:
        "python scripts/label_documents.py --sample {input.sample} --model-dir {input.model}"
        " --settings {params.settings:q} --work-dir {params.work_dir} --threads {threads}"
        " --out {output} > {log} 2>&1"


rule export_annotation_sample:
    input:
        labels=f"{LABELS}/llm_labels.parquet",
        sample=f"{LABELS}/sample.parquet",
    output:
        sheets=expand(
            f"{LABELS}/annotation/annotator-{{k}}.csv",
            k=range(1, VALIDATION["annotators"] + 1),
        ),
        key=f"{LABELS}/annotation/key.csv",
    log:
        f"{ROOT}logs/labels/export_annotation_sample.log",
    benchmark:
        f"{ROOT}benchmarks/labels/export_annotation_sample.tsv"
    conda:
        "../envs/data.yaml"
    params:
        out_dir=lambda w, output: os.path.dirname(output.key),
        seed=config["seed"],
        medical=VALIDATION["medical_items"],
        other=VALIDATION["other_items"],
        annotators=VALIDATION["annotators"],
    shell:
        "python scripts/export_annotation_sample.py --labels {input.labels}"
        " --sample {input.sample} --medical {params.medical}"
        " --other {params.other} --annotators {params.annotators}"
        " --seed {params.seed} --out-dir {params.out_dir} > {log} 2>&1"


rule simulate_annotations:
    input:
        key=f"{LABELS}/annotation/key.csv",
        truth=truth_files(),
    output:
        expand(
            f"{LABELS}/annotation/simulated/annotator-{{k}}.csv",
            k=range(1, VALIDATION["annotators"] + 1),
        ),
    log:
        f"{ROOT}logs/labels/simulate_annotations.log",
    benchmark:
        f"{ROOT}benchmarks/labels/simulate_annotations.tsv"
    conda:
        "../envs/data.yaml"
    params:
        error_rate=VALIDATION.get("simulate_annotators", {}).get("error_rate", 0.0),
        seed=config["seed"],
    shell:
        "python scripts/simulate_annotations.py --key {input.key} --truth {input.truth}"
        " --error-rate {params.error_rate} --seed {params.seed} --out {output} > {log} 2>&1"


rule evaluate_labels:
    input:
        key=f"{LABELS}/annotation/key.csv",
        annotations=annotation_files(),
    output:
        report(
            f"{LABELS}/label_validation.json",
            caption="../report/label_validation.rst",
            category="Labelling",
        ),
    log:
        f"{ROOT}logs/labels/evaluate_labels.log",
    benchmark:
        f"{ROOT}benchmarks/labels/evaluate_labels.tsv"
    localrule: True
    conda:
        "../envs/data.yaml"
    params:
        simulated="--simulated" if "simulate_annotators" in VALIDATION else "",
    shell:
        "python scripts/evaluate_labels.py --key {input.key} {params.simulated}"
        " --out {output} {input.annotations} > {log} 2>&1"


# Table 6's sheet: the LLM's false positives against the annotators' majority, a kind to name for
# each (the miniature names them from the fixture's ground truth)
rule false_positive_sheet:
    input:
        key=f"{LABELS}/annotation/key.csv",
        sample=f"{LABELS}/sample.parquet",
        annotations=annotation_files(),
        truth=truth_files() if "simulate_annotators" in VALIDATION else [],
    output:
        f"{LABELS}/annotation/false_positives.csv",
    log:
        f"{ROOT}logs/labels/false_positive_sheet.log",
    benchmark:
        f"{ROOT}benchmarks/labels/false_positive_sheet.tsv"
    localrule: True
    conda:
        "../envs/data.yaml"
    params:
        truth=lambda w, input: f"--truth {' '.join(input.truth)}" if input.truth else "",
    shell:
        "python scripts/false_positive_sheet.py --key {input.key} --sample {input.sample}"
        " {params.truth} --out {output} {input.annotations} > {log} 2>&1"


rule split_labelled_documents:
    input:
        labels=f"{LABELS}/llm_labels.parquet",
        sample=f"{LABELS}/sample.parquet",
    output:
        train=f"{LABELS}/train.parquet",
        test=f"{LABELS}/test.parquet",
        stats=report(
            f"{LABELS}/split_stats.json",
            caption="../report/split_stats.rst",
            category="Labelling",
        ),
    log:
        f"{ROOT}logs/labels/split_labelled_documents.log",
    benchmark:
        f"{ROOT}benchmarks/labels/split_labelled_documents.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/data.yaml"
    params:
        test_fraction=config["split"]["test_fraction"],
        stratify="--stratify" if config["split"]["stratify"] else "",
        seed=config["seed"],
    shell:
        "python scripts/split_labelled_documents.py --labels {input.labels}"
        " --sample {input.sample} --test-fraction {params.test_fraction} --seed {params.seed}"
        " {params.stratify} --train {output.train} --test {output.test}"
        " --stats {output.stats} > {log} 2>&1"


rule fixture_label_agreement:
    input:
        labels=f"{LABELS}/llm_labels.parquet",
        truth=truth_files(),
    output:
        report(
            f"{LABELS}/fixture_label_agreement.json",
            caption="../report/fixture_label_agreement.rst",
            category="Miniature checks",
        ),
    log:
        f"{ROOT}logs/labels/fixture_label_agreement.log",
    benchmark:
        f"{ROOT}benchmarks/labels/fixture_label_agreement.tsv"
    conda:
        "../envs/data.yaml"
    shell:
        "python scripts/fixture_label_agreement.py --labels {input.labels}"
        " --truth {input.truth} --out {output} > {log} 2>&1"
