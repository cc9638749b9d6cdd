# Continual pre-training (paper 4.2, A.3): each run's corpus tokenised with its base model's own
# tokenizer and packed into fixed-length sequences.

CPT = config["cpt"]
RUNS = CPT["runs"]


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
