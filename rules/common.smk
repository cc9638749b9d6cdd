import os
import re
import json

from snakemake.utils import min_version, validate

min_version("9.0")


validate(config, schema="../schemas/config.schema.yaml")

ROOT = config[
    "root"
]  # "" (paper run) or "miniature/": every output path starts with it
MODELS = config["models"]
HUB_MODELS = [m for m, spec in MODELS.items() if "hub" in spec]
TINY_MODELS = [m for m, spec in MODELS.items() if "tiny" in spec]
FIXTURE = config["fineweb"]["source"] == "fixture"


NEVER = (
    "(?!)"  # a wildcard constraint nothing matches: switches a rule off for this run
)
SHARD_NAME = (
    "[^/]+"  # shard names come from the manifest; the download script checks them
)


def one_of(names):
    """Wildcard constraint matching exactly `names` (nothing when empty)."""
    return "|".join(re.escape(n) for n in names) if names else NEVER


def as_json(obj):
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def model_dir(name):
    if name not in MODELS:
        raise ValueError(f"config: model {name!r} is not defined under 'models'")
    return f"{ROOT}models/{name}"


def shard_names():
    if FIXTURE:
        return [
            f"train-000_{i:05d}" for i in range(config["fineweb"]["fixture"]["shards"])
        ]
    from definemed.fineweb import read_manifest

    return [e.shard for e in read_manifest(config["fineweb"]["manifest"])]


SHARDS = shard_names()


def shard_files():
    return expand(f"{ROOT}data/fineweb2/{{shard}}.parquet", shard=SHARDS)


def truth_files():
    """The fixture's ground truth: read only by miniature reports and tests."""
    return expand(f"{ROOT}data/fixture_truth/{{shard}}.parquet", shard=SHARDS)


def annotation_files():
    """Filled annotation sheets: simulated in the miniature, from config in the paper run."""
    validation = config["label_validation"]
    if "simulate_annotators" in validation:
        return expand(
            f"{ROOT}results/labels/annotation/simulated/annotator-{{k}}.csv",
            k=range(1, validation["annotators"] + 1),
        )
    return validation["annotation_files"]


def corpus_parts(run):
    corpus = config["cpt"]["runs"][run]["corpus"]
    if corpus == "finemed":
        return expand(f"{ROOT}results/finemed/{{shard}}.parquet", shard=SHARDS)
    return [f"{ROOT}results/ablation/fineweb2_random.parquet"]


def cpt_resources(run):
    """cpt.resources with the run's own overrides (e.g. the 24B model's node count)."""
    run_spec = config["cpt"]["runs"][run]
    return {**config["cpt"]["resources"], **run_spec.get("resources", {})}


def all_targets():
    targets = [model_dir(m) for m in MODELS]
    targets += [
        f"{ROOT}results/labels/llm_labels.parquet",
        f"{ROOT}results/labels/split_stats.json",
        f"{ROOT}results/labels/annotation/key.csv",
    ]
    if annotation_files():
        targets.append(f"{ROOT}results/labels/label_validation.json")
    targets += [
        f"{ROOT}results/classifier/metrics.json",
        f"{ROOT}results/classifier/threshold_curve.json",
        f"{ROOT}results/finemed/statistics.json",
        f"{ROOT}results/ablation/statistics.json",
    ]
    targets += expand(
        f"{ROOT}results/cpt/{{run}}/{{file}}",
        run=config["cpt"]["runs"],
        file=["summary.json", "perplexity.json"],
    )
    targets += expand(
        f"{ROOT}results/merges/{{run}}-slerp/check.json", run=config["cpt"]["runs"]
    )
    if FIXTURE:
        targets += [
            f"{ROOT}results/labels/fixture_label_agreement.json",
            f"{ROOT}results/finemed/fixture_precision.json",
        ]
    targets += paper_targets()
    return targets


def evaluated_model_dir(name):
    """Directory of any model the evaluation stages use: a `models` entry, a CPT run, or a
    run's SLERP merge `<run>-slerp`."""
    if name in MODELS:
        return model_dir(name)
    runs = config["cpt"]["runs"]
    if name in runs or (name.endswith("-slerp") and name[: -len("-slerp")] in runs):
        return f"{ROOT}models/{name}"
    raise ValueError(
        f"config: {name!r} is neither a model, a CPT run nor a merge '<run>-slerp'"
    )


# ---- the paper's tables and figures (rules/paper.smk)

PAPER = config["paper"]
REPORTED_TABLES = ["table4", "table8", "table9", "table11"]


def evaluated_models():
    """Every name a table can show: models, CPT runs and their merges."""
    runs = list(config["cpt"]["runs"])
    return [*MODELS, *runs, *(f"{r}-slerp" for r in runs)]


def display_names():
    from definemed.config import display_name

    return {name: display_name(config, name) for name in evaluated_models()}


def benchmark_tables():
    """config benchmarks.tables (Tables 4, 9, 11): {table: {rows: [model], columns: [task]}}."""
    return config.get("benchmarks", {}).get("tables", {})


def benchmark_file(model, task):
    return f"{ROOT}results/benchmarks/{model}/{task}.json"


def benchmark_table_inputs(table):
    spec = benchmark_tables()[table]
    return [benchmark_file(m, t) for m in spec["rows"] for t in spec["columns"]]


def benchmark_headers(table):
    """Task key -> the column header the paper prints (paper.reported_columns)."""
    return {
        task: header
        for header, task in PAPER["reported_columns"].get(table, {}).items()
    }


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


def table8_row_args():
    import shlex

    return " ".join(
        f"--row {shlex.quote(name)} {summary} {log}"
        for name, summary, log in table8_rows()
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


def reproduction_inputs():
    """The reported CSVs and every result the reproduction report compares with them."""
    inputs = [f"paper/reported/{t}.csv" for t in REPORTED_TABLES]
    inputs += [f for _, summary, log in table8_rows() for f in (summary, log)]
    for table, spec in benchmark_tables().items():
        if table in PAPER["reported_columns"]:
            tasks = [
                t
                for t in PAPER["reported_columns"][table].values()
                if t in spec["columns"]
            ]
            inputs += [benchmark_file(m, t) for m in spec["rows"] for t in tasks]
    return inputs


def paper_targets():
    """Tables and figures whose inputs this workflow makes: Tables 2, 5 (once annotated), 8,
    Figures 4, 5 and the reproduction report."""
    targets = expand(f"{ROOT}paper/tables/table2.{{ext}}", ext=["md", "tex"])
    if annotation_files():
        targets += expand(f"{ROOT}paper/tables/table5.{{ext}}", ext=["md", "tex"])
    if PAPER["table8"]["runs"]:
        targets += expand(f"{ROOT}paper/tables/table8.{{ext}}", ext=["md", "tex"])
    targets += expand(f"{ROOT}paper/figures/figure4.{{ext}}", ext=["pdf", "png"])
    if scaling_files():
        targets += expand(f"{ROOT}paper/figures/figure5.{{ext}}", ext=["pdf", "png"])
    targets.append(f"{ROOT}paper/reproduction.md")
    return targets


def paper_benchmark_targets():
    """Tables 4, 9, 11 (config benchmarks.tables): add to all_targets once benchmarks exist."""
    return expand(
        f"{ROOT}paper/tables/{{table}}.{{ext}}",
        table=list(benchmark_tables()),
        ext=["md", "tex"],
    )


def paper_judge_targets():
    """Figures 2 and 3 (judges): add to all_targets once the judge rules exist."""
    return expand(
        f"{ROOT}paper/figures/{{fig}}.{{ext}}",
        fig=["figure2", "figure3"],
        ext=["pdf", "png"],
    )
