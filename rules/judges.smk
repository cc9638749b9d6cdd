# Response generation and LLM-as-judge evaluations (paper 5.2, 5.3, A.7, Table 10, Figures 2 and 3):
# MedAlpaca-de queries, one response file per model, pairwise verdicts and their win-rate matrix,
# failure modes per response and their counts. Paid judge calls go through a persistent cache under
# {ROOT}work/judges/ (outside the declared outputs: a failed or rerun job never pays twice), after a
# cost estimate written to results/judges/cost_estimate.json.

MEDALPACA = config["medalpaca"]
GENERATION = config["generation"]
JUDGES = config["judges"]
QUERIES = f"{ROOT}results/medalpaca/queries.jsonl"
JUDGE_WORK = f"{ROOT}work/judges"


# The judges stage's helpers (kept apart: `snakemake --lint` wants no functions beside rules).
include: "helpers/judges.smk"


if FIXTURE:

    rule fixture_medalpaca:
        output:
            f"{ROOT}data/medalpaca/fixture_queries.jsonl",
        log:
            f"{ROOT}logs/medalpaca/fixture_queries.log",
        benchmark:
            f"{ROOT}benchmarks/medalpaca/fixture_queries.tsv"
        conda:
            "../envs/data.yaml"
        shell:
            "python scripts/make_fixture_queries.py --out {output} > {log} 2>&1"


if MEDALPACA["source"] == "file":

    rule medalpaca_queries:
        input:
            MEDALPACA["file"],
        output:
            QUERIES,
        log:
            f"{ROOT}logs/medalpaca/queries.log",
        benchmark:
            f"{ROOT}benchmarks/medalpaca/queries.tsv"
        conda:
            "../envs/data.yaml"
        params:
            n=MEDALPACA["sample_size"],
            seed=config["seed"],
            context=MEDALPACA["context"],
        shell:
            "python scripts/prepare_queries.py --input {input} --kind queries --sample-size {params.n}"
            " --seed {params.seed} --context {params.context} --out {output} > {log} 2>&1"

else:

    rule fetch_medalpaca:
        output:
            f"{ROOT}data/medalpaca/source.jsonl",
        log:
            f"{ROOT}logs/medalpaca/fetch.log",
        benchmark:
            f"{ROOT}benchmarks/medalpaca/fetch.tsv"
        conda:
            "../envs/hub.yaml"
        params:
            repo=MEDALPACA["hub"]["repo"],
            revision=lambda w: pinned("datasets", "medalpaca"),
            file=MEDALPACA["hub"]["file"],
        shell:
            "env -u HF_HUB_OFFLINE -u HF_DATASETS_OFFLINE -u TRANSFORMERS_OFFLINE python scripts/fetch_medalpaca.py --repo {params.repo} --revision {params.revision}"
            " --file {params.file} --out {output} > {log} 2>&1"

    rule sample_medalpaca:
        input:
            f"{ROOT}data/medalpaca/source.jsonl",
        output:
            f"{ROOT}results/medalpaca/sample_en.jsonl",
        log:
            f"{ROOT}logs/medalpaca/sample.log",
        benchmark:
            f"{ROOT}benchmarks/medalpaca/sample.tsv"
        conda:
            "../envs/data.yaml"
        params:
            n=MEDALPACA["sample_size"],
            seed=config["seed"],
        shell:
            "python scripts/prepare_queries.py --input {input} --kind medalpaca --sample-size {params.n}"
            " --seed {params.seed} --out {output} > {log} 2>&1"

    rule translate_medalpaca:
        input:
            sample=f"{ROOT}results/medalpaca/sample_en.jsonl",
            judge_model=judge_model_input(MEDALPACA["translation"]),
            prompts=prompt_files("translation"),
        output:
            queries=QUERIES,
            stats=f"{ROOT}results/medalpaca/translation.json",
        log:
            f"{ROOT}logs/medalpaca/translate.log",
        benchmark:
            f"{ROOT}benchmarks/medalpaca/translate.tsv"
        conda:
            "../envs/judge.yaml"
        resources:
            runtime=MEDALPACA["resources"].get("runtime", 240),
        params:
            settings=as_json(MEDALPACA["translation"]),
            # prices and budget only: other judge settings must not rerun the translation
            judges=as_json({k: JUDGES[k] for k in ("prices", "max_cost_usd")}),
            context=MEDALPACA["context"],
            cache=f"{JUDGE_WORK}/translation.sqlite",
            model_dir=lambda w, input: (f"--model-dir {input.judge_model}" if input.judge_model else ""),
        shell:
            "python scripts/translate_queries.py --sample {input.sample} --settings {params.settings:q}"
            " --judges {params.judges:q} --context {params.context} --cache {params.cache}"
            " {params.model_dir} --out {output.queries} --out-stats {output.stats} > {log} 2>&1"


rule generate_responses:
    input:
        queries=QUERIES,
        model=lambda w: evaluated_model_dir(w.model),
        template=lambda w: chat_template_dir(w.model),
    output:
        f"{ROOT}results/generations/{{model}}.jsonl",
    log:
        f"{ROOT}logs/generations/{{model}}.log",
    benchmark:
        f"{ROOT}benchmarks/generations/{{model}}.tsv"
    wildcard_constraints:
        model=one_of(judged_models()),
    conda:
        ("../envs/vllm.yaml" if GENERATION["backend"] == "vllm" else "../envs/transformers.yaml")
    threads: config["threads"]
    resources:
        # vLLM: one GPU per tensor-parallel rank (generation.tensor_parallel)
        nodes=1,
        gres=lambda w: generation_resources(w.model)["gres"],
        tasks_per_gpu=0,
        runtime=lambda w: generation_resources(w.model)["runtime"],
        mem_mb=lambda w: generation_resources(w.model)["mem_mb"],
        cpus_per_task=lambda w: generation_resources(w.model)["cpus_per_task"],
    params:
        settings=lambda w: as_json(generation_settings(config, w.model)),
        seed=config["seed"],
        display=lambda w: display_names([w.model])[w.model],
    shell:
        "python scripts/generate_responses.py --model {wildcards.model} --model-dir {input.model}"
        " --template-dir {input.template} --queries {input.queries} --settings {params.settings:q}"
        " --seed {params.seed} --display {params.display:q} --threads {threads}"
        " --out {output} > {log} 2>&1"


rule judge_cost_estimate:
    input:
        queries=QUERIES,
        generations=generation_files(),
        translation_sample=([f"{ROOT}results/medalpaca/sample_en.jsonl"] if MEDALPACA["source"] == "hub" else []),
        # the estimate counts the tokens of the rendered prompts
        prompts=prompt_files(
            "pairwise",
            "failure_modes",
            *(["translation"] if MEDALPACA["source"] == "hub" else []),
        ),
    output:
        report(
            f"{ROOT}results/judges/cost_estimate.json",
            caption="../report/judge_cost_estimate.rst",
            category="Judges",
        ),
    log:
        f"{ROOT}logs/judges/cost_estimate.log",
    benchmark:
        f"{ROOT}benchmarks/judges/cost_estimate.tsv"
    localrule: True
    conda:
        "../envs/judge.yaml"
    params:
        models=judged_models(),
        judges=as_json(JUDGES),
        translation_sample=lambda w, input: (
            f"--translation-sample {input.translation_sample}" if input.translation_sample else ""
        ),
        translation=as_json(MEDALPACA.get("translation", {})),
    shell:
        "python scripts/estimate_judge_cost.py --queries {input.queries}"
        " --generations {input.generations} --models {params.models}"
        " --judges {params.judges:q} {params.translation_sample}"
        " --translation {params.translation:q} --out {output} > {log} 2>&1"


rule judge_pairwise:
    input:
        queries=QUERIES,
        generations=generation_files(),
        estimate=f"{ROOT}results/judges/cost_estimate.json",
        judge_model=judge_model_input(JUDGES["pairwise"]),
        judge_rules=judge_rules_input(JUDGES["pairwise"]),
        prompts=prompt_files("pairwise"),
    output:
        verdicts=f"{ROOT}results/judges/pairwise/verdicts.jsonl",
        stats=f"{ROOT}results/judges/pairwise/run.json",
    log:
        f"{ROOT}logs/judges/pairwise.log",
    benchmark:
        f"{ROOT}benchmarks/judges/pairwise.tsv"
    conda:
        "../envs/judge.yaml"
    threads: config["threads"]
    resources:
        **stage_resources(JUDGES["resources"]),
    params:
        models=judged_models(),
        settings=as_json(JUDGES["pairwise"]),
        judges=as_json(JUDGES),
        cache=f"{JUDGE_WORK}/pairwise.sqlite",
        model_dir=lambda w, input: (f"--model-dir {input.judge_model}" if input.judge_model else ""),
    shell:
        "python scripts/judge_pairwise.py --queries {input.queries} --generations {input.generations}"
        " --models {params.models} --settings {params.settings:q} --judges {params.judges:q}"
        " --estimate {input.estimate} --cache {params.cache} {params.model_dir} --threads {threads}"
        " --out {output.verdicts} --out-stats {output.stats} > {log} 2>&1"


rule pairwise_winrate:
    input:
        f"{ROOT}results/judges/pairwise/verdicts.jsonl",
    output:
        report(
            f"{ROOT}results/judges/pairwise/winrate.json",
            caption="../report/pairwise_winrate.rst",
            category="Judges",
        ),
    log:
        f"{ROOT}logs/judges/winrate.log",
    benchmark:
        f"{ROOT}benchmarks/judges/winrate.tsv"
    localrule: True
    conda:
        "../envs/judge.yaml"
    params:
        models=judged_models(),
        display=as_json(display_names(judged_models())),
    shell:
        "python scripts/pairwise_winrate.py --verdicts {input} --models {params.models}"
        " --display {params.display:q} --out {output} > {log} 2>&1"


rule judge_failure_modes:
    input:
        queries=QUERIES,
        generations=generation_files(),
        estimate=f"{ROOT}results/judges/cost_estimate.json",
        judge_model=judge_model_input(JUDGES["failure_modes"]),
        judge_rules=judge_rules_input(JUDGES["failure_modes"]),
        prompts=prompt_files("failure_modes"),
    output:
        per_model=expand(
            f"{ROOT}results/judges/failure_modes/{{model}}.jsonl",
            model=judged_models(),
        ),
        stats=f"{ROOT}results/judges/failure_modes/run.json",
    log:
        f"{ROOT}logs/judges/failure_modes.log",
    benchmark:
        f"{ROOT}benchmarks/judges/failure_modes.tsv"
    conda:
        "../envs/judge.yaml"
    threads: config["threads"]
    resources:
        **stage_resources(JUDGES["resources"]),
    params:
        models=judged_models(),
        settings=as_json(JUDGES["failure_modes"]),
        judges=as_json(JUDGES),
        cache=f"{JUDGE_WORK}/failure_modes.sqlite",
        out_dir=lambda w, output: os.path.dirname(output.stats),
        model_dir=lambda w, input: (f"--model-dir {input.judge_model}" if input.judge_model else ""),
    shell:
        "python scripts/judge_failure_modes.py --queries {input.queries}"
        " --generations {input.generations} --models {params.models}"
        " --settings {params.settings:q} --judges {params.judges:q} --estimate {input.estimate}"
        " --cache {params.cache} {params.model_dir} --threads {threads}"
        " --out-dir {params.out_dir} --out-stats {output.stats} > {log} 2>&1"


rule failure_mode_counts:
    input:
        expand(
            f"{ROOT}results/judges/failure_modes/{{model}}.jsonl",
            model=judged_models(),
        ),
    output:
        report(
            f"{ROOT}results/judges/failure_modes/counts.json",
            caption="../report/failure_mode_counts.rst",
            category="Judges",
        ),
    log:
        f"{ROOT}logs/judges/failure_mode_counts.log",
    benchmark:
        f"{ROOT}benchmarks/judges/failure_mode_counts.tsv"
    localrule: True
    conda:
        "../envs/judge.yaml"
    params:
        models=judged_models(),
        display=as_json(display_names(judged_models())),
    shell:
        "python scripts/failure_mode_counts.py --inputs {input} --models {params.models}"
        " --display {params.display:q} --out {output} > {log} 2>&1"
