# The paper's tables (2, 4, 5, 8, 9, 11) and figures (2, 3, 4, 5) from results/ only, and the
# reproduction report against the numbers the paper reports (paper/reported/*.csv). Every table
# and figure is a target of its own: `snakemake paper/figures/figure4.pdf` redraws it from the
# existing results without touching an upstream job.

TABLES = f"{ROOT}paper/tables"
FIGURES = f"{ROOT}paper/figures"


# The paper stage's helpers (kept apart: `snakemake --lint` wants no functions beside rules).
include: "helpers/paper.smk"


rule table2:
    input:
        split=f"{ROOT}results/labels/split_stats.json",
        finemed=f"{ROOT}results/finemed/statistics.json",
    output:
        md=report(
            f"{TABLES}/table2.md",
            caption="../report/table2.rst",
            category="Paper tables",
        ),
        tex=f"{TABLES}/table2.tex",
    log:
        f"{ROOT}logs/paper/table2.log",
    benchmark:
        f"{ROOT}benchmarks/paper/table2.tsv"
    localrule: True
    conda:
        "../envs/paper.yaml"
    shell:
        "python scripts/make_table.py table2 --split-stats {input.split}"
        " --finemed-stats {input.finemed} --out-md {output.md} --out-tex {output.tex} > {log} 2>&1"


rule table5:
    input:
        f"{ROOT}results/labels/label_validation.json",
    output:
        md=report(
            f"{TABLES}/table5.md",
            caption="../report/table5.rst",
            category="Paper tables",
        ),
        tex=f"{TABLES}/table5.tex",
    log:
        f"{ROOT}logs/paper/table5.log",
    benchmark:
        f"{ROOT}benchmarks/paper/table5.tsv"
    localrule: True
    conda:
        "../envs/paper.yaml"
    shell:
        "python scripts/make_table.py table5 --label-validation {input}"
        " --out-md {output.md} --out-tex {output.tex} > {log} 2>&1"


# Table 6: the kinds of the LLM's false positives, once the sheet's kinds are named
rule table6:
    input:
        lambda w: false_positive_kinds(),
    output:
        md=report(
            f"{TABLES}/table6.md",
            caption="../report/table6.rst",
            category="Paper tables",
        ),
        tex=f"{TABLES}/table6.tex",
    log:
        f"{ROOT}logs/paper/table6.log",
    benchmark:
        f"{ROOT}benchmarks/paper/table6.tsv"
    localrule: True
    conda:
        "../envs/paper.yaml"
    shell:
        "python scripts/make_table.py table6 --false-positives {input}"
        " --out-md {output.md} --out-tex {output.tex} > {log} 2>&1"


rule table8:
    input:
        [f for _, summary, log in table8_rows() for f in (summary, log)],
    output:
        md=report(
            f"{TABLES}/table8.md",
            caption="../report/table8.rst",
            category="Paper tables",
        ),
        tex=f"{TABLES}/table8.tex",
    log:
        f"{ROOT}logs/paper/table8.log",
    benchmark:
        f"{ROOT}benchmarks/paper/table8.tsv"
    localrule: True
    conda:
        "../envs/paper.yaml"
    params:
        rows=table8_row_args(),
    shell:
        "python scripts/make_table.py table8 {params.rows}" " --out-md {output.md} --out-tex {output.tex} > {log} 2>&1"


# Table 3 from the base models' folders: parameters from the weights' shapes, vocabulary from the
# tokenizer, licence from the model card
rule table3:
    input:
        [evaluated_model_dir(m) for m in table3_models()],
    output:
        md=report(
            f"{TABLES}/table3.md",
            caption="../report/table3.rst",
            category="Paper tables",
        ),
        tex=f"{TABLES}/table3.tex",
    log:
        f"{ROOT}logs/paper/table3.log",
    benchmark:
        f"{ROOT}benchmarks/paper/table3.tsv"
    localrule: True
    conda:
        "../envs/paper.yaml"
    params:
        models=table3_model_args(),
    shell:
        "python scripts/make_table.py table3 {params.models}"
        " --out-md {output.md} --out-tex {output.tex} > {log} 2>&1"


# Table 7 from the config the run used (cpt, schema defaults filled in)
rule table7:
    output:
        md=report(
            f"{TABLES}/table7.md",
            caption="../report/table7.rst",
            category="Paper tables",
        ),
        tex=f"{TABLES}/table7.tex",
    log:
        f"{ROOT}logs/paper/table7.log",
    benchmark:
        f"{ROOT}benchmarks/paper/table7.tsv"
    localrule: True
    conda:
        "../envs/paper.yaml"
    params:
        cpt=as_json({k: v for k, v in config["cpt"].items() if k not in ("runs", "resources")}),
    shell:
        "python scripts/make_table.py table7 --cpt {params.cpt:q}"
        " --out-md {output.md} --out-tex {output.tex} > {log} 2>&1"


# Table 10 from the failure-mode schema the judge used (its descriptions, recorded with the counts)
rule table10:
    input:
        f"{ROOT}results/judges/failure_modes/counts.json",
    output:
        md=report(
            f"{TABLES}/table10.md",
            caption="../report/table10.rst",
            category="Paper tables",
        ),
        tex=f"{TABLES}/table10.tex",
    log:
        f"{ROOT}logs/paper/table10.log",
    benchmark:
        f"{ROOT}benchmarks/paper/table10.tsv"
    localrule: True
    conda:
        "../envs/paper.yaml"
    shell:
        "python scripts/make_table.py table10 --failure-modes {input}"
        " --out-md {output.md} --out-tex {output.tex} > {log} 2>&1"


# Tables 4, 9 and 11: rows derived from config (definemed.evaluation.benchmarks.table_rows), columns benchmarks.tasks
rule benchmark_table:
    input:
        lambda w: benchmark_table_inputs(w.table),
    output:
        md=report(
            f"{TABLES}/{{table}}.md",
            caption="../report/benchmark_table.rst",
            category="Paper tables",
        ),
        tex=f"{TABLES}/{{table}}.tex",
    log:
        f"{ROOT}logs/paper/{{table}}.log",
    benchmark:
        f"{ROOT}benchmarks/paper/{{table}}.tsv"
    wildcard_constraints:
        table=one_of(benchmark_tables()),
    localrule: True
    conda:
        "../envs/paper.yaml"
    params:
        rows=lambda w: benchmark_tables()[w.table]["rows"],
        columns=lambda w: benchmark_tables()[w.table]["columns"],
        display=as_json(display_names()),
        headers=lambda w: as_json(benchmark_headers(w.table)),
        results_dir=f"{ROOT}results/benchmarks",
    shell:
        "python scripts/make_table.py benchmark --rows {params.rows} --columns {params.columns}"
        " --display {params.display:q} --headers {params.headers:q}"
        " --results-dir {params.results_dir} --mark-constant-answers"
        " --out-md {output.md} --out-tex {output.tex} > {log} 2>&1"


# Figure 1 (the paper's high-level process) from the workflow's own rule graph, the graph of the
# config this run uses: one box per stage whose rules the graph has (definemed.paper.figures.process_stages)
rule rulegraph:
    output:
        f"{FIGURES}/rulegraph.dot",
    log:
        f"{ROOT}logs/paper/rulegraph.log",
    benchmark:
        f"{ROOT}benchmarks/paper/rulegraph.tsv"
    localrule: True
    conda:
        "../envs/paper.yaml"
    params:
        config=lambda w: as_json(config),  # a function: config strings hold {braces}
        # relative: an absolute path would rerun the job in a copy of the project (params changed)
        snakefile=os.path.relpath(workflow.main_snakefile),
    shell:
        "python scripts/rule_graph.py --snakefile {params.snakefile} --config {params.config:q}"
        " --out {output} > {log} 2>&1"


rule figure1:
    input:
        f"{FIGURES}/rulegraph.dot",
    output:
        pdf=f"{FIGURES}/figure1.pdf",
        png=report(
            f"{FIGURES}/figure1.png",
            caption="../report/figure1.rst",
            category="Paper figures",
        ),
    log:
        f"{ROOT}logs/paper/figure1.log",
    benchmark:
        f"{ROOT}benchmarks/paper/figure1.tsv"
    localrule: True
    conda:
        "../envs/paper.yaml"
    shell:
        "python scripts/make_figure.py figure1 --rulegraph {input}"
        " --out-pdf {output.pdf} --out-png {output.png} > {log} 2>&1"


rule figure2:
    input:
        f"{ROOT}results/judges/pairwise/winrate.json",
    output:
        pdf=f"{FIGURES}/figure2.pdf",
        png=report(
            f"{FIGURES}/figure2.png",
            caption="../report/figure2.rst",
            category="Paper figures",
        ),
    log:
        f"{ROOT}logs/paper/figure2.log",
    benchmark:
        f"{ROOT}benchmarks/paper/figure2.tsv"
    localrule: True
    conda:
        "../envs/paper.yaml"
    params:
        display=as_json(display_names()),
    shell:
        "python scripts/make_figure.py figure2 --winrate {input} --display {params.display:q}"
        " --out-pdf {output.pdf} --out-png {output.png} > {log} 2>&1"


rule figure3:
    input:
        f"{ROOT}results/judges/failure_modes/counts.json",
    output:
        pdf=f"{FIGURES}/figure3.pdf",
        png=report(
            f"{FIGURES}/figure3.png",
            caption="../report/figure3.rst",
            category="Paper figures",
        ),
    log:
        f"{ROOT}logs/paper/figure3.log",
    benchmark:
        f"{ROOT}benchmarks/paper/figure3.tsv"
    localrule: True
    conda:
        "../envs/paper.yaml"
    params:
        display=as_json(display_names()),
    shell:
        "python scripts/make_figure.py figure3 --counts {input} --display {params.display:q}"
        " --out-pdf {output.pdf} --out-png {output.png} > {log} 2>&1"


rule figure4:
    input:
        f"{ROOT}results/classifier/threshold_curve.json",
    output:
        pdf=f"{FIGURES}/figure4.pdf",
        png=report(
            f"{FIGURES}/figure4.png",
            caption="../report/figure4.rst",
            category="Paper figures",
        ),
    log:
        f"{ROOT}logs/paper/figure4.log",
    benchmark:
        f"{ROOT}benchmarks/paper/figure4.tsv"
    localrule: True
    conda:
        "../envs/paper.yaml"
    shell:
        "python scripts/make_figure.py figure4 --curve {input}"
        " --out-pdf {output.pdf} --out-png {output.png} > {log} 2>&1"


# Figure 5: a few continual pre-training steps per node count, with the training code of train_cpt
SCALING_RESOURCES = stage_resources({"runtime": 30, **PAPER.get("scaling", {}).get("resources", {})})


rule cpt_scaling:
    input:
        packed=f"{ROOT}results/packed/{{run}}",
        base=lambda w: model_dir(config["cpt"]["runs"][w.run]["base"]),
    output:
        f"{ROOT}results/scaling/{{run}}/nodes-{{nodes}}.json",
    log:
        f"{ROOT}logs/scaling/{{run}}/nodes-{{nodes}}.log",
    benchmark:
        f"{ROOT}benchmarks/scaling/{{run}}/nodes-{{nodes}}.tsv"
    wildcard_constraints:
        run=one_of(PAPER.get("scaling", {}).get("runs", [])),
        nodes=r"[1-9][0-9]*",
    conda:
        "../envs/train.yaml"
    # all the CPUs its resources ask for (scaling.resources.cpus_per_task): nothing may run
    # beside a throughput measurement
    threads: SCALING_RESOURCES["cpus_per_task"]
    resources:
        # GPUs per node as --gres (stage_resources); the node count is the wildcard's
        **{k: v for k, v in SCALING_RESOURCES.items() if k != "nodes"},
        nodes=lambda w: int(w.nodes),
    params:
        settings=as_json({k: v for k, v in config["cpt"].items() if k not in ("runs", "launcher", "resources")}),
        seed=config["seed"],
        launcher=lambda w: PAPER["scaling"]["launcher"].format(
            nodes=int(w.nodes),
            processes=int(w.nodes) * PAPER["scaling"]["processes_per_node"],
        ),
        steps=PAPER.get("scaling", {}).get("steps"),
        warmup=PAPER.get("scaling", {}).get("warmup_steps"),
        threads_arg=(
            f"--threads {PAPER['scaling']['threads_per_process']}"
            if PAPER.get("scaling", {}).get("threads_per_process")
            else ""
        ),
        work_dir=lambda w: f"{ROOT}work/scaling/{w.run}/nodes-{w.nodes}",
    shell:
        "rm -rf {params.work_dir} && {params.launcher} scripts/cpt_scaling.py"
        " --cpt-run {wildcards.run} --packed {input.packed} --base {input.base}"
        " --settings {params.settings:q} --seed {params.seed} --nodes {wildcards.nodes}"
        " --steps {params.steps} --warmup-steps {params.warmup} {params.threads_arg}"
        " --work-dir {params.work_dir} --out {output} > {log} 2>&1"


rule figure5:
    input:
        scaling_files(),
    output:
        pdf=f"{FIGURES}/figure5.pdf",
        png=report(
            f"{FIGURES}/figure5.png",
            caption="../report/figure5.rst",
            category="Paper figures",
        ),
    log:
        f"{ROOT}logs/paper/figure5.log",
    benchmark:
        f"{ROOT}benchmarks/paper/figure5.tsv"
    localrule: True
    conda:
        "../envs/paper.yaml"
    params:
        display=as_json(display_names()),
        unit=PAPER.get("scaling", {}).get("unit", "nodes"),
    shell:
        "python scripts/make_figure.py figure5 --unit {params.unit:q} --display {params.display:q}"
        " --out-pdf {output.pdf} --out-png {output.png} --points {input} > {log} 2>&1"


# The effects between table rows with their noise (paired over the same items) and the held-out
# perplexity shifts: what the miniature must show, and the paper run's evidence beside its tables.
rule model_effects:
    input:
        effects_inputs(),
    output:
        report(
            f"{ROOT}results/effects.json",
            caption="../report/effects.rst",
            category="Reproduction",
        ),
    log:
        f"{ROOT}logs/paper/effects.log",
    benchmark:
        f"{ROOT}benchmarks/paper/effects.tsv"
    localrule: True
    conda:
        "../envs/paper.yaml"
    params:
        # a function: Snakemake would read the braces of Jinja prompt overrides as wildcards
        config=lambda w: as_json({"cpt": config["cpt"], "benchmarks": config["benchmarks"]}),
        results=lambda w, output: os.path.dirname(output[0]),
        perplexity=lambda w, input: [f for f in input if f.endswith("perplexity.json")],
        sigma=PAPER["flag_sigma"],
    shell:
        "python scripts/model_effects.py --config-json {params.config:q} --results-dir {params.results}"
        " --perplexity {params.perplexity} --sigma {params.sigma} --out {output} > {log} 2>&1"


rule reproduction_report:
    input:
        reproduction_inputs(),
        record=f"{ROOT}results/inputs.json",
        effects=f"{ROOT}results/effects.json",
    output:
        report(
            f"{ROOT}paper/reproduction.md",
            caption="../report/reproduction.rst",
            category="Reproduction",
        ),
    log:
        f"{ROOT}logs/paper/reproduction.log",
    benchmark:
        f"{ROOT}benchmarks/paper/reproduction.tsv"
    localrule: True
    conda:
        "../envs/paper.yaml"
    params:
        settings=as_json({k: v for k, v in PAPER.items() if k != "scaling"}),
        display=as_json(display_names()),
        tables=as_json(benchmark_tables()),
        root=ROOT,
        miniature="--miniature" if TINY_MODELS else "",
        clusters=as_json({run: run_cluster(run) for run in PAPER["table8"]["runs"]}),
        claims=as_json(claims_spec()),
    shell:
        "python scripts/reproduction_report.py --reported-dir paper/reported --root {params.root:q}"
        " --settings {params.settings:q} --display {params.display:q}"
        " --benchmark-tables {params.tables:q} --clusters {params.clusters:q} --claims {params.claims:q}"
        " {params.miniature} --inputs {input.record} --effects {input.effects}"
        " --out {output} > {log} 2>&1"
