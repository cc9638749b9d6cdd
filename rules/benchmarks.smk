# Paper 5.1, A.5, A.6 (Tables 4, 9, 11): lm-evaluation-harness, one job per (model, task group).


# The benchmarks stage's helpers (kept apart: `snakemake --lint` wants no functions beside rules).
include: "helpers/benchmarks.smk"


rule make_benchmark_fixture:
    output:
        f"{ROOT}data/benchmarks/{{task}}.jsonl",
    log:
        f"{ROOT}logs/benchmarks/fixtures/{{task}}.log",
    benchmark:
        f"{ROOT}benchmarks/benchmarks/fixtures/{{task}}.tsv"
    wildcard_constraints:
        task=one_of([t for t, s in config["benchmarks"]["tasks"].items() if s["data"] == "fixture"]),
    conda:
        "../envs/data.yaml"
    params:
        spec=lambda w: as_json(config["benchmarks"]["tasks"][w.task]["fixture"]),
        seed=config["seed"],
    shell:
        "python scripts/make_benchmark_fixture.py --task {wildcards.task} --spec {params.spec:q}"
        " --seed {params.seed} --out {output} > {log} 2>&1"


for _group, _tasks in BENCHMARK_GROUPS.items():

    rule:
        name:
            f"benchmark_{_group}"
        input:
            model=lambda w: evaluated_model_dir(w.model),
            data=benchmark_data(_group),
            lm_eval_data=lambda w, group=_group: lm_eval_dataset_files(group),
        output:
            results=[f"{ROOT}results/benchmarks/{{model}}/{t}.json" for t in _tasks],
            samples=[f"{ROOT}results/benchmarks/{{model}}/{t}.samples.jsonl" for t in _tasks],
            full=f"{ROOT}results/benchmarks/{{model}}/{_group}.lm_eval.json",
        log:
            f"{ROOT}logs/benchmarks/{{model}}/{_group}.log",
        benchmark:
            f"{ROOT}benchmarks/benchmarks/{{model}}/{_group}.tsv"
        wildcard_constraints:
            model=one_of(group_models(config, _group)),
        conda:
            "../envs/benchmarks.yaml"
        threads: 1 if config["benchmarks"]["backend"] == "hf" else config["threads"]
        resources:
            nodes=1,
            gres=lambda w: benchmark_resources(w.model)["gres"],
            tasks_per_gpu=0,
            runtime=lambda w: benchmark_resources(w.model)["runtime"],
            mem_mb=lambda w: benchmark_resources(w.model)["mem_mb"],
            cpus_per_task=lambda w: benchmark_resources(w.model)["cpus_per_task"],
        params:
            # a function: Snakemake would read the braces of Jinja prompt overrides as wildcards
            tasks=lambda w, tasks=_tasks: as_json({t: config["benchmarks"]["tasks"][t] for t in tasks}),
            settings=lambda w: as_json(benchmark_settings(w.model)),
            work_dir=lambda w, group=_group: f"{ROOT}work/benchmarks/{w.model}/{group}",
            out_dir=lambda w, output: os.path.dirname(output.full),
        shell:
            "python scripts/run_benchmarks.py --model {wildcards.model} --model-dir {input.model}"
            " --tasks {params.tasks:q} --settings {params.settings:q} --data {input.data}"
            " --lm-eval-data {input.lm_eval_data}"
            " --work-dir {params.work_dir} --out-dir {params.out_dir} --out-full {output.full}"
            " --threads {threads} > {log} 2>&1"


# MedQA-de (5.1), for tasks with `data: medqa_de`: your own German file (medqa_de.source: file), or
# the seeded English sample machine-translated (source: translate).
if MEDQA_DE and config["medqa_de"]["source"] == "file":

    rule import_medqa_de:
        input:
            config["medqa_de"]["file"],
        output:
            f"{ROOT}data/benchmarks/medqa_de.jsonl",
        log:
            f"{ROOT}logs/benchmarks/import_medqa_de.log",
        benchmark:
            f"{ROOT}benchmarks/benchmarks/import_medqa_de.tsv"
        conda:
            "../envs/data.yaml"
        params:
            # `items` is reserved by Snakemake (Namedlist.items): the rule would not load
            item_count=" ".join(f"--items {t['items']}" for t in MEDQA_DE[:1] if t["items"]),
        shell:
            "python scripts/import_medqa_de.py --file {input} {params.item_count} --out {output} > {log} 2>&1"

elif MEDQA_DE:

    rule sample_medqa:
        output:
            f"{ROOT}data/benchmarks/medqa_en_sample.jsonl",
        log:
            f"{ROOT}logs/benchmarks/sample_medqa.log",
        benchmark:
            f"{ROOT}benchmarks/benchmarks/sample_medqa.tsv"
        conda:
            "../envs/hub.yaml"
        params:
            repo=config["medqa_de"]["hub"]["repo"],
            revision=lambda w: pinned("datasets", "medqa_de"),
            split=config["medqa_de"]["split"],
            sample=config["medqa_de"]["sample"],
            seed=config["seed"],
        shell:
            "env -u HF_HUB_OFFLINE -u HF_DATASETS_OFFLINE -u TRANSFORMERS_OFFLINE python scripts/sample_medqa.py --repo {params.repo} --revision {params.revision}"
            " --split {params.split} --sample {params.sample} --seed {params.seed} --out {output} > {log} 2>&1"

    rule translate_medqa:
        input:
            sample=f"{ROOT}data/benchmarks/medqa_en_sample.jsonl",
            judge_model=judge_model_input(config["medqa_de"]["translation"]),
            prompts=prompt_files("translation_medqa"),
        output:
            data=f"{ROOT}data/benchmarks/medqa_de.jsonl",
            stats=f"{ROOT}results/benchmarks/medqa_de_translation.json",
        log:
            f"{ROOT}logs/benchmarks/translate_medqa.log",
        benchmark:
            f"{ROOT}benchmarks/benchmarks/translate_medqa.tsv"
        conda:
            "../envs/judge.yaml"
        resources:
            runtime=240,
        params:
            settings=as_json(config["medqa_de"]["translation"]),
            # prices and budget only: other judge settings must not rerun the translation
            judges=as_json({k: config["judges"][k] for k in ("prices", "max_cost_usd")}),
            cache=f"{ROOT}work/benchmarks/medqa_translation.sqlite",
            model_dir=lambda w, input: (f"--model-dir {input.judge_model}" if input.judge_model else ""),
        shell:
            "python scripts/translate_medqa.py --sample {input.sample} --settings {params.settings:q}"
            " --judges {params.judges:q} --cache {params.cache} {params.model_dir}"
            " --out {output.data} --out-stats {output.stats} > {log} 2>&1"
