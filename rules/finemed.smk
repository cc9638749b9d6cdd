# FineMed-de (paper 3.3, Table 2) and the random FineWeb2-de ablation corpus (A.5): the classifier
# scores every shard (one job per shard; to pack N shards into one cluster job, add
# --groups score_shard=scoring --group-components scoring=N), the
# documents at or above the threshold form FineMed-de.

SCORING = config["scoring"]


rule score_shard:
    input:
        shard=f"{ROOT}data/fineweb2/{{shard}}.parquet",
        model=f"{CLS}/model",
    output:
        f"{ROOT}results/scores/{{shard}}.parquet",
    log:
        f"{ROOT}logs/scores/{{shard}}.log",
    benchmark:
        f"{ROOT}benchmarks/scores/{{shard}}.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/transformers.yaml"
    threads: config["threads"]
    resources:
        **stage_resources(SCORING["resources"]),
    params:
        max_length=CLASSIFIER["max_length"],
        max_tokens=CLASSIFIER["max_tokens_per_batch"],
        read_documents=SCORING["read_documents"],
    shell:
        "python scripts/score_shard.py --model {input.model} --shard {input.shard}"
        " --max-length {params.max_length} --max-tokens-per-batch {params.max_tokens}"
        " --read-documents {params.read_documents} --threads {threads} --out {output} > {log} 2>&1"


rule filter_shard:
    input:
        shard=f"{ROOT}data/fineweb2/{{shard}}.parquet",
        scores=f"{ROOT}results/scores/{{shard}}.parquet",
        metrics=f"{CLS}/metrics.json",
    output:
        f"{ROOT}results/finemed/{{shard}}.parquet",
    log:
        f"{ROOT}logs/finemed/{{shard}}.log",
    benchmark:
        f"{ROOT}benchmarks/finemed/{{shard}}.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/data.yaml"
    shell:
        "python scripts/filter_shard.py --shard {input.shard} --scores {input.scores}"
        " --metrics {input.metrics} --out {output} > {log} 2>&1"


rule corpus_statistics:
    input:
        finemed=expand(f"{ROOT}results/finemed/{{shard}}.parquet", shard=SHARDS),
        scores=expand(f"{ROOT}results/scores/{{shard}}.parquet", shard=SHARDS),
    output:
        report(
            f"{ROOT}results/finemed/statistics.json",
            caption="../report/corpus_statistics.rst",
            category="FineMed-de",
        ),
    log:
        f"{ROOT}logs/finemed/corpus_statistics.log",
    benchmark:
        f"{ROOT}benchmarks/finemed/corpus_statistics.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/data.yaml"
    shell:
        "python scripts/corpus_statistics.py --finemed {input.finemed} --scores {input.scores}"
        " --out {output} > {log} 2>&1"


rule make_ablation_corpus:
    input:
        tokenizer=model_dir(config["ablation"]["tokenizer"]),
        finemed=expand(f"{ROOT}results/finemed/{{shard}}.parquet", shard=SHARDS),
        shards=shard_files(),
        scores=expand(f"{ROOT}results/scores/{{shard}}.parquet", shard=SHARDS),
        metrics=f"{CLS}/metrics.json",
        stats=f"{ROOT}results/finemed/statistics.json",
    output:
        corpus=f"{ROOT}results/ablation/fineweb2_random.parquet",
        stats=report(
            f"{ROOT}results/ablation/statistics.json",
            caption="../report/ablation_statistics.rst",
            category="FineMed-de",
        ),
    log:
        f"{ROOT}logs/ablation/make_ablation_corpus.log",
    benchmark:
        f"{ROOT}benchmarks/ablation/make_ablation_corpus.tsv"
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/transformers.yaml"
    resources:
        runtime=1440,
        mem_mb=32000,
    params:
        seed=config["seed"],
    shell:
        "python scripts/make_ablation_corpus.py --tokenizer {input.tokenizer}"
        " --finemed {input.finemed} --shards {input.shards} --scores {input.scores}"
        " --metrics {input.metrics} --corpus-stats {input.stats} --seed {params.seed}"
        " --out {output.corpus} --out-stats {output.stats} > {log} 2>&1"


rule fixture_finemed_precision:
    input:
        finemed=expand(f"{ROOT}results/finemed/{{shard}}.parquet", shard=SHARDS),
        truth=truth_files(),
    output:
        report(
            f"{ROOT}results/finemed/fixture_precision.json",
            caption="../report/fixture_finemed_precision.rst",
            category="Miniature checks",
        ),
    log:
        f"{ROOT}logs/finemed/fixture_finemed_precision.log",
    benchmark:
        f"{ROOT}benchmarks/finemed/fixture_finemed_precision.tsv"
    conda:
        "../envs/data.yaml"
    shell:
        "python scripts/fixture_finemed_precision.py --finemed {input.finemed} --truth {input.truth}"
        " --out {output} > {log} 2>&1"
