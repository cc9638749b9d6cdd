# FineWeb2 German shards (paper 3.1): downloaded per manifest row and verified, or, in the
# miniature, generated as seeded fixture shards in the same parquet schema.


rule download_fineweb_shard:
    output:
        f"{ROOT}data/fineweb2/{{shard}}.parquet",
    log:
        f"{ROOT}logs/fineweb2/{{shard}}.log",
    benchmark:
        f"{ROOT}benchmarks/fineweb2/{{shard}}.tsv"
    wildcard_constraints:
        shard=NEVER if FIXTURE else SHARD_NAME,
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/hub.yaml"
    resources:
        runtime=120,
    params:
        manifest=config["fineweb"].get("manifest"),
        repo=config["fineweb"].get("repo"),
        revision=lambda w: pinned("datasets", "fineweb"),
        local_dir=config["fineweb"].get("local_dir") or "",
    # `--local-dir=`: an empty value (no mirror) must stay one argument
    shell:
        "env -u HF_HUB_OFFLINE -u HF_DATASETS_OFFLINE -u TRANSFORMERS_OFFLINE python scripts/download_fineweb_shard.py --manifest {params.manifest}"
        " --shard {wildcards.shard} --repo {params.repo} --revision {params.revision}"
        " --local-dir={params.local_dir:q} --out {output} > {log} 2>&1"


rule make_fixture_shard:
    output:
        shard=f"{ROOT}data/fineweb2/{{shard}}.parquet",
        truth=f"{ROOT}data/fixture_truth/{{shard}}.parquet",
    log:
        f"{ROOT}logs/fineweb2/{{shard}}.log",
    benchmark:
        f"{ROOT}benchmarks/fineweb2/{{shard}}.tsv"
    wildcard_constraints:
        shard=SHARD_NAME if FIXTURE else NEVER,
    priority: UPSTREAM_PRIORITY
    conda:
        "../envs/data.yaml"
    params:
        index=lambda w: SHARDS.index(w.shard),
        fixture=config["fineweb"].get("fixture", {}),
        seed=config["seed"],
    shell:
        "python scripts/make_fixture_shard.py --seed {params.seed} --index {params.index}"
        " --documents {params.fixture[documents_per_shard]}"
        " --medical-share {params.fixture[medical_share]}"
        " --hard-negative-share {params.fixture[hard_negative_share]}"
        " --out {output.shard} --truth {output.truth} > {log} 2>&1"
