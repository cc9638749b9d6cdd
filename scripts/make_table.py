"""Write one of the paper's tables as Markdown and LaTeX (booktabs) from result files.

    python scripts/make_table.py table2 --split-stats results/labels/split_stats.json \
        --finemed-stats results/finemed/statistics.json \
        --out-md paper/tables/table2.md --out-tex paper/tables/table2.tex
    python scripts/make_table.py table5 --label-validation results/labels/label_validation.json \
        --out-md ... --out-tex ...
    python scripts/make_table.py table8 --row Mistral-7B-Instruct-v0.3 Karolina \
        results/cpt/definemed-mistral-7b/summary.json results/cpt/definemed-mistral-7b/training_log.jsonl \
        [--row ...] --out-md ... --out-tex ...
    python scripts/make_table.py benchmark --rows m1 m2 --columns anatomy medqa_de --display '{"m1": "..."}' \
        --headers '{"anatomy": "Anatomy"}' --results-dir results/benchmarks --out-md ... --out-tex ...
"""

import argparse
import json
from pathlib import Path

import _cli  # noqa: F401
from definemed.io import read_json, read_jsonl, write_text
from definemed.paper import tables

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("table", choices=["table2", "table3", "table5", "table6", "table7", "table8", "table10", "benchmark"])
p.add_argument(
    "--model",
    nargs=3,
    action="append",
    metavar=("NAME", "FOLDER", "CITATION"),
    default=[],
    help="table3: printed name, model folder, the source the config cites (models.<m>.citation; empty: none)",
)
p.add_argument("--false-positives", help="table6: the filled false-positive sheet (kind column)")
p.add_argument("--cpt", help="table7: the cpt section of the run's config as JSON")
p.add_argument("--failure-modes", help="table10: results/judges/failure_modes/counts.json")
p.add_argument("--split-stats")
p.add_argument("--finemed-stats")
p.add_argument("--label-validation")
p.add_argument("--row", nargs=4, action="append", metavar=("NAME", "CLUSTER", "SUMMARY", "LOG"), default=[])
p.add_argument("--rows", nargs="*", default=[])
p.add_argument("--columns", nargs="*", default=[])
p.add_argument("--display", default="{}", help="JSON: model key -> printed name")
p.add_argument("--headers", default="{}", help="JSON: task key -> printed column header")
p.add_argument("--results-dir", help="results/benchmarks: <model>/<task>.json below it")
p.add_argument(
    "--mark-constant-answers",
    action="store_true",
    help="benchmark: read each cell's <task>.samples.jsonl and mark a row answering one option for a whole column",
)
p.add_argument("--out-md", required=True)
p.add_argument("--out-tex", required=True)
args = p.parse_args()


if args.table == "table2":
    parts = tables.table2(read_json(args.split_stats), read_json(args.finemed_stats))
elif args.table == "table3":
    from definemed.model_facts import card_license, parameter_count, vocabulary_size

    facts = [
        (
            name,
            {
                "parameters": parameter_count(d),
                "vocabulary": vocabulary_size(d),
                "license": card_license(d),
                "citation": citation,
            },
        )
        for name, d, citation in args.model
    ]
    parts = tables.table3(facts)
elif args.table == "table6":
    from definemed.dataset.annotation import kind_examples

    parts = tables.table6(kind_examples(args.false_positives))
elif args.table == "table7":
    parts = tables.table7(json.loads(args.cpt))
elif args.table == "table10":
    parts = tables.table10(read_json(args.failure_modes))
elif args.table == "table5":
    parts = tables.table5(read_json(args.label_validation))
elif args.table == "table8":
    parts = tables.table8([(n, cluster, read_json(s), read_jsonl(log)) for n, cluster, s, log in args.row])
else:
    from definemed.evaluation.effects import constant_answer

    results = {m: {t: read_json(Path(args.results_dir) / m / f"{t}.json") for t in args.columns} for m in args.rows}
    # a row answering one option for a whole column is marked (its per-sample log, beside the result, says so)
    constant = {}
    if args.mark_constant_answers:
        constant = {
            m: {t: o for t in args.columns if (o := constant_answer(Path(args.results_dir).parent, m, t)) is not None}
            for m in args.rows
        }
    parts = tables.benchmark_table(
        results, args.rows, args.columns, json.loads(args.display), json.loads(args.headers), constant
    )
write_text(args.out_md, tables.to_markdown(parts))
write_text(args.out_tex, tables.to_latex(parts))
