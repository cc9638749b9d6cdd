# Helpers of rules/paper.smk: which tables and figures this config makes and what each reads
# (benchmark tables, Table 3 and 8 rows, the claims and the reproduction report's inputs).

PAPER = config["paper"]
REPORTED_TABLES = ["table4", "table8", "table9", "table11"]


def benchmark_tables():
    """Tables 4, 9, 11: {table: {rows: [model], columns: [task]}}, rows derived from config
    (definemed.evaluation.benchmarks.table_rows), columns the benchmark tasks of the table's group.
    """
    from definemed.evaluation.benchmarks import table_rows

    groups = {"table4": "medical", "table9": "medical", "table11": "general"}
    return {
        table: {"rows": table_rows(config, table), "columns": BENCHMARK_GROUPS[group]}
        for table, group in groups.items()
        if group in BENCHMARK_GROUPS and table_rows(config, table)
    }


def benchmark_file(model, task):
    return f"{ROOT}results/benchmarks/{model}/{task}.json"


def benchmark_table_inputs(table):
    """Each cell's result and its per-sample log (a row answering one constant option is marked)."""
    spec = benchmark_tables()[table]
    return [
        f
        for m in spec["rows"]
        for t in spec["columns"]
        for f in (
            benchmark_file(m, t),
            benchmark_file(m, t).replace(".json", ".samples.jsonl"),
        )
    ]


def benchmark_headers(table):
    """Task key -> the column header the paper prints (paper.reported_columns)."""
    return {task: header for header, task in PAPER["reported_columns"].get(table, {}).items()}


def table8_rows():
    """(printed name, summary, training log) per Table 8 run: the paper names a run by its base."""
    from definemed.config import display_name

    runs = config["cpt"]["runs"]
    return [
        (
            display_name(config, runs[run]["base"]),
            f"{ROOT}results/cpt/{run}/summary.json",
            f"{ROOT}results/cpt/{run}/training_log.jsonl",
        )
        for run in PAPER["table8"]["runs"]
    ]


def run_cluster(run):
    """Table 8's Cluster column: the run's own `cluster`, else cpt.cluster."""
    return config["cpt"]["runs"][run].get("cluster", config["cpt"]["cluster"])


def table8_row_args():
    import shlex

    return " ".join(
        f"--row {shlex.quote(name)} {shlex.quote(run_cluster(run))} {summary} {log}"
        for run, (name, summary, log) in zip(PAPER["table8"]["runs"], table8_rows())
    )


def scaling_files():
    scaling = PAPER.get("scaling")
    if not scaling:
        return []
    return expand(
        f"{ROOT}results/scaling/{{run}}/nodes-{{nodes}}.json",
        run=scaling["runs"],
        nodes=scaling["nodes"],
    )


def claims_spec():
    """What the claims section (definemed.paper.claims) reads: the FineMed families, the ablation run,
    the roles of paper.claims, the task groups and baselines."""
    runs = config["cpt"]["runs"]
    families = [
        {"run": r, "base": s["base"], "cpt": r, "merge": f"{r}-slerp"}
        for r, s in runs.items()
        if s["corpus"] == "finemed"
    ]
    roles = PAPER.get("claims", {})
    focus = runs.get(roles.get("focus_run"), {}).get("base")
    ablation = [
        {"run": r, "base": s["base"], "cpt": r, "merge": f"{r}-slerp"}
        for r, s in runs.items()
        if s["corpus"] == "fineweb2_random" and s["base"] == focus
    ]
    return {
        "families": families,
        "ablation": ablation[0] if ablation else None,
        "medical_tasks": BENCHMARK_GROUPS.get("medical", []),
        "general_tasks": BENCHMARK_GROUPS.get("general", []),
        "medical_baselines": config["benchmarks"]["baselines"]["medical"],
        # how each column scores an item (metric, filter): the claims pair items across rows
        "task_specs": {
            t: {k: v for k, v in config["benchmarks"]["tasks"][t].items() if k in ("metric", "filter")}
            for group in ("medical", "general")
            for t in BENCHMARK_GROUPS.get(group, [])
        },
        **roles,
    }


def claims_inputs():
    """Result files the claims read beyond the compared tables: the judges, every family's per-item
    benchmark logs and training logs, and the scaling measurements."""
    spec = claims_spec()
    fams = spec["families"] + ([spec["ablation"]] if spec["ablation"] else [])
    files = [f"{ROOT}results/cpt/{f['run']}/{n}" for f in fams for n in ("summary.json", "training_log.jsonl")]
    models = {m for f in fams for m in (f["base"], f["cpt"], f["merge"])} | set(spec["medical_baselines"])
    from definemed.evaluation.benchmarks import group_models

    for group in ("medical", "general"):
        evaluated = models & set(group_models(config, group))
        # the per-item logs: claims pair rows item by item and spot constant answers
        files += [
            f"{ROOT}results/benchmarks/{m}/{t}.samples.jsonl" for m in sorted(evaluated) for t in spec[f"{group}_tasks"]
        ]
    files += scaling_files()  # Figure 5's numbers: the near-linear scaling claim (A.3)
    if "judges" in config:
        files += [
            f"{ROOT}results/judges/pairwise/winrate.json",
            f"{ROOT}results/judges/failure_modes/counts.json",
        ]
    return sorted(set(files))


def reproduction_inputs():
    """The reported CSVs and every result the reproduction report compares with them."""
    inputs = [f"paper/reported/{t}.csv" for t in REPORTED_TABLES] + claims_inputs()
    inputs += [f for _, summary, log in table8_rows() for f in (summary, log)]
    for table, spec in benchmark_tables().items():
        if table in PAPER["reported_columns"]:
            tasks = [t for t in PAPER["reported_columns"][table].values() if t in spec["columns"]]
            inputs += [benchmark_file(m, t) for m in spec["rows"] for t in tasks]
    return inputs


def table3_models():
    """Table 3: the instruct bases the FineMed-de runs train, in cpt.runs' order."""
    runs = config["cpt"]["runs"].values()
    return list(dict.fromkeys(s["base"] for s in runs if s["corpus"] == "finemed"))


def table3_model_args():
    import shlex
    from definemed.config import display_name

    return " ".join(
        f"--model {shlex.quote(display_name(config, m))} {evaluated_model_dir(m)}"
        f" {shlex.quote(config['models'][m].get('citation', ''))}"
        for m in table3_models()
    )


def false_positive_kinds():
    """Table 6's filled sheet: the miniature's (kinds from the fixture), else
    label_validation.false_positive_kinds once someone has named the kinds (None: no Table 6).
    """
    validation = config["label_validation"]
    if "simulate_annotators" in validation:
        return f"{ROOT}results/labels/annotation/false_positives.csv"
    return validation.get("false_positive_kinds")


def paper_targets():
    """Every table and figure whose inputs this workflow makes: Tables 2, 4, 5 (once annotated),
    8, 9, 11, Figures 2-5 and the reproduction report."""
    targets = expand(
        f"{ROOT}paper/tables/{{table}}.{{ext}}",
        table=["table2", "table3", "table7"],
        ext=["md", "tex"],
    )
    if annotation_files():
        targets += expand(f"{ROOT}paper/tables/table5.{{ext}}", ext=["md", "tex"])
        targets.append(f"{ROOT}results/labels/annotation/false_positives.csv")
    if annotation_files() and false_positive_kinds():
        targets += expand(f"{ROOT}paper/tables/table6.{{ext}}", ext=["md", "tex"])
    if PAPER["table8"]["runs"]:
        targets += expand(f"{ROOT}paper/tables/table8.{{ext}}", ext=["md", "tex"])
    targets += expand(
        f"{ROOT}paper/figures/{{fig}}.{{ext}}",
        fig=["figure1", "figure4"],
        ext=["pdf", "png"],
    )
    if scaling_files():
        targets += expand(f"{ROOT}paper/figures/figure5.{{ext}}", ext=["pdf", "png"])
    targets += paper_benchmark_targets()
    if "judges" in config:
        targets += paper_judge_targets()
    targets.append(f"{ROOT}paper/reproduction.md")
    return targets


def paper_benchmark_targets():
    """Tables 4, 9, 11."""
    return expand(
        f"{ROOT}paper/tables/{{table}}.{{ext}}",
        table=list(benchmark_tables()),
        ext=["md", "tex"],
    )


def paper_judge_targets():
    """Figures 2 and 3 and Table 10 (judges)."""
    return expand(
        f"{ROOT}paper/figures/{{fig}}.{{ext}}",
        fig=["figure2", "figure3"],
        ext=["pdf", "png"],
    ) + expand(f"{ROOT}paper/tables/table10.{{ext}}", ext=["md", "tex"])


def effects_inputs():
    """Per-sample logs of every model the effects compare (results/effects.json) and the held-out
    perplexities of every CPT run."""
    from definemed.evaluation.effects import comparisons

    files = []
    for c in comparisons(config):
        for model in (c["before"], c["after"]):
            files += [
                f"{ROOT}results/benchmarks/{model}/{t}.samples.jsonl" for t in BENCHMARK_GROUPS.get(c["group"], [])
            ]
    files += [f"{ROOT}results/cpt/{run}/perplexity.json" for run in config["cpt"]["runs"]]
    return sorted(set(files))
