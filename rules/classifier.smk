# The medical document classifier (paper 3.2, A.2, Figure 4): fine-tuned on the LLM labels,
# its threshold chosen, measured on the held-out test split.

CLASSIFIER = config["classifier"]
CLS = f"{ROOT}results/classifier"


rule train_classifier:
    input:
        train=f"{LABELS}/train.parquet",
        base=model_dir(CLASSIFIER["model"]),
    output:
        model=directory(f"{CLS}/model"),
        log=f"{CLS}/training_log.jsonl",
        validation=f"{CLS}/validation_scores.parquet",
    log:
        f"{ROOT}logs/classifier/train_classifier.log",
    benchmark:
        f"{ROOT}benchmarks/classifier/train_classifier.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/transformers.yaml"
    threads: config["threads"]
    resources:
        **stage_resources(CLASSIFIER["resources"]),
    params:
        settings=as_json(CLASSIFIER),
        seed=config["seed"],
        # Trainer checkpoints outside the outputs: a job killed at its time limit resumes
        work_dir=f"{ROOT}work/classifier",
    shell:
        "python scripts/train_classifier.py --train {input.train} --base-model {input.base}"
        " --settings {params.settings:q} --seed {params.seed} --work-dir {params.work_dir}"
        " --threads {threads} --out-model {output.model} --out-log {output.log}"
        " --out-validation {output.validation} > {log} 2>&1"


rule evaluate_classifier:
    input:
        model=f"{CLS}/model",
        test=f"{LABELS}/test.parquet",
        validation=f"{CLS}/validation_scores.parquet",
    output:
        metrics=report(
            f"{CLS}/metrics.json",
            caption="../report/classifier_metrics.rst",
            category="Classifier",
        ),
        curve=report(
            f"{CLS}/threshold_curve.json",
            caption="../report/threshold_curve.rst",
            category="Classifier",
        ),
    log:
        f"{ROOT}logs/classifier/evaluate_classifier.log",
    benchmark:
        f"{ROOT}benchmarks/classifier/evaluate_classifier.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/transformers.yaml"
    params:
        settings=as_json(CLASSIFIER),
    shell:
        "python scripts/evaluate_classifier.py --model {input.model} --test {input.test}"
        " --validation {input.validation} --settings {params.settings:q}"
        " --out-metrics {output.metrics} --out-curve {output.curve} > {log} 2>&1"
