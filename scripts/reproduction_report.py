"""The reproduction report: the paper's Tables 4, 8, 9 and 11 (paper/reported/*.csv) beside the
numbers computed from results/, per cell, with the difference in standard errors.

    python scripts/reproduction_report.py --reported-dir paper/reported --root "" \
        --settings '<paper section as JSON>' --display '<model key -> display name>' \
        --benchmark-tables '<{table: {rows, columns}} as JSON>' --inputs results/inputs.json \
        --out paper/reproduction.md [--miniature]
Results are read from <root>results/ (benchmarks/<model>/<task>.json, cpt/<run>/summary.json and
training_log.jsonl); a benchmark table is compared only when --benchmark-tables defines it.
"""

import argparse
import json
from pathlib import Path

import _cli  # noqa: F401
from definemed.evaluation.effects import render_effects
from definemed.io import read_json, read_jsonl, write_text
from definemed.paper import claims as cl
from definemed.paper import reproduction as rp

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--reported-dir", required=True)
p.add_argument("--root", default="")
p.add_argument("--settings", required=True)
p.add_argument("--display", required=True)
p.add_argument("--benchmark-tables", default="{}")
p.add_argument("--clusters", default="{}", help="JSON: CPT run -> the cluster its config names")
p.add_argument(
    "--claims",
    default=None,
    help="JSON: families, ablation, roles, tasks (claims_spec in rules/helpers/paper.smk)",
)
p.add_argument("--miniature", action="store_true")
p.add_argument("--inputs", required=True, help="results/inputs.json: the FineWeb2 files the run read")
p.add_argument("--effects", help="results/effects.json: effects between rows with their noise")
p.add_argument("--out", required=True)
args = p.parse_args()

settings = rp.ReportSettings.from_json(args.settings)
index = rp.display_index(json.loads(args.display), settings.display_prefix)
specs = json.loads(args.benchmark_tables)
results = Path(f"{args.root}results")
titles = {
    "table4": "Table 4: medical benchmarks",
    "table8": "Table 8: continual pre-training compute",
    "table9": "Table 9: FineMed-de against a random FineWeb2-de sample (A.5)",
    "table11": "Table 11: general benchmarks (A.6)",
}
sections, notes = {}, {}
for table in ("table4", "table8", "table9", "table11"):
    reported = rp.read_reported(rp.reported_path(args.reported_dir, table))
    if table == "table8":
        runs = {
            run: (
                read_json(results / "cpt" / run / "summary.json"),
                read_jsonl(results / "cpt" / run / "training_log.jsonl"),
            )
            for run in settings.table8["runs"]
        }
        clusters = json.loads(args.clusters)
        sections[table] = rp.compare_table8(reported, runs, index, settings.relative_tolerance, clusters)
    elif table in specs:
        columns = settings.reported_columns[table]
        tasks = [t for t in columns.values() if t in specs[table]["columns"]]
        data = {
            m: {t: read_json(results / "benchmarks" / m / f"{t}.json") for t in tasks} for m in specs[table]["rows"]
        }
        sections[table] = rp.compare_benchmark(table, reported, columns, data, index, settings.flag_sigma)
    else:
        sections[table] = []
        notes[table] = (
            f"Not compared: this config has no rows for {table} (definemed.evaluation.benchmarks.table_rows), so there"
            f" are no results for its {len(reported)} rows of the paper."
        )
text = rp.render(
    sections,
    args.miniature,
    settings.flag_sigma,
    settings.relative_tolerance,
    titles,
    notes,
    corpus=rp.corpus_note(read_json(args.inputs)),
)
judge_files = [results / "judges" / "pairwise" / "winrate.json", results / "judges" / "failure_modes" / "counts.json"]
if any(f.exists() for f in judge_files):
    winrate, counts = (read_json(f) if f.exists() else None for f in judge_files)
    text += "\n" + rp.judge_note(winrate, counts, args.miniature)
if args.claims:
    from definemed.evaluation.effects import constant_answer, item_scores

    spec = json.loads(args.claims)
    families = [cl.Family(**f) for f in spec["families"]]
    ablation = cl.Family(**spec["ablation"]) if spec["ablation"] else None
    runs = [f.run for f in families] + ([ablation.run] if ablation else [])
    models = {m for f in [*families, *([ablation] if ablation else [])] for m in (f.base, f.cpt, f.merge)}
    models |= set(spec["medical_baselines"])
    tasks = spec["medical_tasks"] + spec["general_tasks"]
    benchmarks = cl.Benchmarks()
    for m in sorted(models):
        for t in tasks:
            if (results / "benchmarks" / m / f"{t}.samples.jsonl").exists():
                benchmarks.items.setdefault(m, {})[t] = item_scores(results, m, {t: spec["task_specs"][t]})
                option = constant_answer(results, m, t)
                if option is not None:
                    benchmarks.constant.setdefault(m, {})[t] = option

    def optional(path):
        return read_json(path) if path.exists() else None

    throughput = {}
    for run in runs:
        log_path = results / "cpt" / run / "training_log.jsonl"
        if log_path.exists():
            rows = read_jsonl(log_path)
            device = read_json(results / "cpt" / run / "summary.json")["device"]
            throughput[run] = {"device": device, "step_tokens_per_s_per_device": cl.step_throughputs(rows)}
    scaling = {}
    for path in sorted((results / "scaling").glob("*/nodes-*.json")):
        point = read_json(path)
        scaling.setdefault(point["run"], []).append(point)
    display = json.loads(args.display)
    roles = {k: spec.get(k) for k in ("focus_run", "large_run", "mixing_run")}
    common = dict(
        families=families,
        medical_tasks=spec["medical_tasks"],
        general_tasks=spec["general_tasks"],
        medical_baselines=spec["medical_baselines"],
        ablation=ablation,
        display=display,
        **roles,
    )
    evidence = cl.Evidence(
        **common,
        benchmarks=benchmarks,
        winrate=optional(results / "judges" / "pairwise" / "winrate.json"),
        failure_modes=optional(results / "judges" / "failure_modes" / "counts.json"),
        throughput=throughput,
        scaling=scaling,
    )
    reported_tables = {
        t: rp.read_reported(rp.reported_path(args.reported_dir, t)) for t in ("table4", "table9", "table11")
    }
    # the paper's side: its own columns (a miniature may leave one out) and its own names
    paper_columns = settings.reported_columns
    paper_evidence = cl.Evidence(
        **{
            **common,
            "medical_tasks": list(paper_columns["table4"].values()),
            "general_tasks": list(paper_columns["table11"].values()),
            "display": {k: v.removeprefix(settings.display_prefix) for k, v in display.items()},
        },
        benchmarks=cl.reported_benchmarks(reported_tables, settings.reported_columns, index),
        absent=cl.REPORTED_ABSENT,
    )
    text += "\n" + cl.render_claims(cl.evaluate_claims(evidence), cl.evaluate_claims(paper_evidence), args.miniature)
if args.effects:
    text += "\n" + render_effects(read_json(args.effects), json.loads(args.display), args.miniature)
write_text(args.out, text)
