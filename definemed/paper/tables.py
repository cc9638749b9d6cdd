"""The paper's tables (2, 3, 4, 5, 7, 8, 9, 10, 11) from the result files, as Markdown and LaTeX (booktabs).

Every builder takes the parsed result JSONs and returns a list of `Table`s (Table 2 has two parts);
the renderers turn them into text. Values are printed as the paper prints them: benchmark
accuracies x100 with two decimals and their standard error ("44.44 ± 4.29"), an "Average" column
of the row's mean accuracy with standard error sqrt(sum se^2) / k.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    title: str = ""
    align: str = ""  # LaTeX column spec; default: first column left, the others right
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- number formats


def fmt_acc(accuracy: float, stderr: float) -> str:
    """An accuracy and its standard error (fractions) as the paper prints them: x100, 2 decimals."""
    return f"{100 * accuracy:.2f} ± {100 * stderr:.2f}"


def fmt_int(n: int) -> str:
    return f"{int(n):,}"


def fmt_score(x: float) -> str:
    return f"{x:.3f}"


def fmt_tokens(n: float) -> str:
    """Token counts as Table 8 prints them (25.1B); smaller counts with M or k."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(int(n))


def fmt_hours(seconds: float) -> str:
    """Training time as Table 8 prints it (72h); under ten hours with two decimals."""
    hours = seconds / 3600
    return f"{hours:.0f}h" if hours >= 10 else f"{hours:.2f}h"


def average(cells: list[tuple[float, float]]) -> tuple[float, float]:
    """Mean accuracy of a row and its standard error sqrt(sum se^2) / k (independent tasks)."""
    k = len(cells)
    return sum(a for a, _ in cells) / k, math.sqrt(sum(se * se for _, se in cells)) / k


# ---------------------------------------------------------------- renderers


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def _md_alignment(table: Table) -> list[str]:
    """Markdown column alignments from the LaTeX spec (l and p{...} left, r right); without a spec,
    the first column left and the others right."""
    if not table.align:
        return ["---"] + ["---:"] * (len(table.columns) - 1)
    letters = re.sub(r"\{[^}]*\}", "", table.align)
    return ["---:" if c == "r" else "---" for c in letters if c in "lrcp"]


def to_markdown(tables: list[Table]) -> str:
    out = []
    for t in tables:
        if t.title:
            out.append(f"**{t.title}**\n")
        out.append("| " + " | ".join(_md_escape(c) for c in t.columns) + " |")
        out.append("|" + "|".join(_md_alignment(t)) + "|")
        for row in t.rows:
            out.append("| " + " | ".join(_md_escape(c) for c in row) + " |")
        for note in t.notes:
            out.append(f"\n{note}")
        out.append("")
    return "\n".join(out)


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    return out.replace("±", r"$\pm$")


def to_latex(tables: list[Table]) -> str:
    """booktabs tabulars (one per part), to be \\input inside a table environment."""
    out = []
    for t in tables:
        spec = t.align or "l" + "r" * (len(t.columns) - 1)
        if t.title:
            out.append(f"% {t.title}")
        out.append(f"\\begin{{tabular}}{{{spec}}}")
        out.append(r"\toprule")
        out.append(" & ".join(latex_escape(c) for c in t.columns) + r" \\")
        out.append(r"\midrule")
        for row in t.rows:
            out.append(" & ".join(latex_escape(c) for c in row) + r" \\")
        out.append(r"\bottomrule")
        out.append(r"\end{tabular}")
        for note in t.notes:
            out.append(f"% {note}")
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- the tables


def table2(split_stats: dict, finemed_stats: dict) -> list[Table]:
    """Table 2: documents and words of FineMed-de-260k's splits (upper part, from
    results/labels/split_stats.json) and of FineMed-de against FineWeb2-de (lower part, from
    results/finemed/statistics.json)."""
    upper = Table(
        title="FineMed-de-260k (LLM labels)",
        columns=["Split", "#Documents Med", "#Documents Other", "#Words Med", "#Words Other"],
        rows=[
            [
                name.capitalize(),
                fmt_int(split_stats[name]["documents"]["medical"]),
                fmt_int(split_stats[name]["documents"]["other"]),
                fmt_int(split_stats[name]["words"]["medical"]),
                fmt_int(split_stats[name]["words"]["other"]),
            ]
            for name in ("test", "train", "total")
        ],
    )
    lower = Table(
        title="FineMed-de",
        columns=["Dataset", "#Documents", "#Words"],
        rows=[
            [name, fmt_int(finemed_stats[name]["documents"]), fmt_int(finemed_stats[name]["words"])]
            for name in ("FineMed-de", "FineWeb2-de")
        ],
    )
    return [upper, lower]


def fmt_parameters(n: int) -> str:
    """Parameter counts as Table 3 prints them (7.2B, 23.6B); small models in M or k."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(n)


def table3(models: list[tuple[str, dict]]) -> list[Table]:
    """Table 3 from (printed name, facts of its model folder: parameters, vocabulary, license, and
    the source the config cites for it: models.<m>.citation)."""
    rows = [
        [
            name,
            fmt_parameters(f["parameters"]),
            fmt_int(f["vocabulary"]),
            f["license"] or "not in the model card",
            f.get("citation") or "no citation in config",
        ]
        for name, f in models
    ]
    notes = [
        "Parameters counted from the weights' shapes; vocabulary from the tokenizer; license from the model card;"
        " source: the publication the config cites for the model (models.<m>.citation)."
    ]
    columns = ["Model", "Parameters", "Vocab Size", "License", "Source"]
    return [Table(columns=columns, rows=rows, align="lrrll", notes=notes)]


# Table 7's rows as the paper prints them (Parameter | PT): (printed name, how to read the value
# from the run's cpt config). The paper's values were lost in its text except Warmup Steps (500).
TABLE7_ROWS = [
    ("Learning Rate", lambda cpt: f"{cpt['learning_rate']:g}"),
    ("Weight Decay", lambda cpt: f"{cpt['weight_decay']:g}"),
    ("Warmup Steps", lambda cpt: f"{cpt['warmup_steps']}"),
    (
        "Effective Batch Size",
        lambda cpt: (
            f"{cpt['effective_batch_sequences']:,} sequences"
            f" ({fmt_int(cpt['effective_batch_sequences'] * cpt['sequence_length'])} tokens)"
        ),
    ),
    ("Sequence Length", lambda cpt: f"{cpt['sequence_length']:,}"),
]


def table7(cpt: dict) -> list[Table]:
    """Table 7: the continual pre-training hyperparameters of the run (PT), the paper's five rows,
    from its config (cpt)."""
    rows = [[name, value(cpt)] for name, value in TABLE7_ROWS]
    return [Table(columns=["Parameter", "PT"], rows=rows, notes=["From the run's config (cpt)."])]


def table10(counts: dict) -> list[Table]:
    """Table 10: the failure modes and their descriptions as the judge used them
    (results/judges/failure_modes/counts.json: modes, descriptions, description_source)."""
    rows = [[mode.replace("_", " ").title(), counts["descriptions"][mode]] for mode in counts["modes"]]
    ours = [m for m in counts["modes"] if counts.get("description_source", {}).get(m) != "Table 10"]
    notes = [f"Not described in the paper's Table 10 (descriptions ours): {', '.join(ours)}."] if ours else []
    return [Table(columns=["Failure Mode", "Description"], rows=rows, align="lp{0.7\\linewidth}", notes=notes)]


def table6(examples: list[tuple[str, int, str]]) -> list[Table]:
    """Table 6 as the paper prints it (Count | False Positive Example): the LLM's false positives
    (medical by the LLM, not by the annotators' majority) grouped by the kind named for each in the
    filled sheet, one row per kind with its count and an excerpt of one of its documents."""
    total = sum(n for _, n, _ in examples)
    kinds = ", ".join(kind for kind, _, _ in examples)
    return [
        Table(
            columns=["Count", "False Positive Example"],
            rows=[[str(n), text] for _, n, text in examples],
            align="rp{0.8\\linewidth}",
            notes=[f"{total} false positives; the rows' kinds, in order: {kinds}."],
        )
    ]


def table5(label_validation: dict) -> list[Table]:
    """Table 5: the LLM labels against the annotators' majority (results/labels/label_validation.json)."""
    rows = [
        ["Precision", fmt_score(label_validation["precision"])],
        ["Recall", fmt_score(label_validation["recall"])],
        ["F1-score", fmt_score(label_validation["f1"])],
        ["Accuracy", fmt_score(label_validation["accuracy"])],
    ]
    # the paper: "inter-annotator agreement of [LOST], measured in Fleiss' Kappa (Randolph, 2005)":
    # Randolph (2005) is the free-marginal multirater kappa, so both are printed
    rows += [
        ["Inter-annotator kappa (Randolph, free-marginal)", fmt_kappa(label_validation["randolph_kappa"])],
        ["Inter-annotator kappa (Fleiss)", fmt_kappa(label_validation["fleiss_kappa"])],
    ]
    notes = [
        f"{label_validation['items']} documents ({label_validation['llm_medical_items']} labelled medical by the LLM),"
        f" {label_validation['annotators']} annotators. Kappa: agreement among the annotators; n/a where"
        " they gave a single class to every document."
    ]
    if label_validation.get("simulated_annotators"):
        notes.append("Annotators simulated (miniature): not comparable to the paper.")
    return [Table(columns=["Metric", "Score"], rows=rows, notes=notes)]


def fmt_kappa(kappa: float | None) -> str:
    return "n/a" if kappa is None else f"{kappa:.3f}"


def table8_values(summary: dict, training_log: list[dict]) -> dict:
    """The numbers of one Table 8 row: devices, accelerator, training time (sum of the optimizer
    steps' seconds: start-up and checkpoint saving excluded), steps and tokens."""
    return {
        "accelerator": summary["device"],
        "devices": summary["world_size"],
        "seconds": sum(r["seconds"] for r in training_log),
        "steps": summary["steps"],
        "tokens": summary["tokens_seen"],
    }


def table8(rows: list[tuple[str, str, dict, list[dict]]]) -> list[Table]:
    """Table 8 from (printed model name, cluster (the run's site in config: cpt.cluster or the
    run's own), results/cpt/<run>/summary.json, training_log.jsonl rows)."""
    values = [(name, cluster, table8_values(s, log)) for name, cluster, s, log in rows]
    gpu = any(v["accelerator"] != "cpu" for _, _, v in values)
    return [
        Table(
            columns=[
                "Model",
                "Cluster",
                "Accelerator",
                "Num GPUs" if gpu else "Num processes",
                "Time",
                "Steps",
                "Tokens",
            ],
            rows=[
                [
                    name,
                    cluster,
                    v["accelerator"],
                    str(v["devices"]),
                    fmt_hours(v["seconds"]),
                    fmt_int(v["steps"]),
                    fmt_tokens(v["tokens"]),
                ]
                for name, cluster, v in values
            ],
            notes=["Time: the optimizer steps' wall time from the training log (start-up and saving excluded)."],
        )
    ]


def benchmark_table(
    results: dict[str, dict[str, dict]],
    rows: list[str],
    columns: list[str],
    display: dict[str, str],
    headers: dict[str, str],
    constant: dict[str, dict[str, int]] | None = None,
) -> list[Table]:
    """Tables 4, 9 and 11: `results[model][task]` are results/benchmarks/<model>/<task>.json;
    `rows` model keys, `columns` task keys, in the paper's order; `display` the printed model
    names, `headers` the printed task names. `constant[model][task]`: the option a model answers
    for every item of a column (definemed.evaluation.effects.constant_answer); such a row is marked with a
    dagger and named below the table: its cell measures the gold letters' distribution, not knowledge."""
    constant = constant or {}
    body, notes = [], []
    for model in rows:
        cells = [(results[model][task]["accuracy"], results[model][task]["stderr"]) for task in columns]
        name = display.get(model, model)
        same = {t: o for t, o in constant.get(model, {}).items() if t in columns}
        if same:
            notes.append(
                f"† {name} answers one option for every item of "
                + ", ".join(f"{headers.get(t, t)} ({'ABCD'[o] if o < 4 else o})" for t, o in same.items())
                + "."
            )
            name += " †"
        body.append([name, *(fmt_acc(a, s) for a, s in cells), fmt_acc(*average(cells))])
    return [Table(columns=["Model", *(headers.get(t, t) for t in columns), "Average"], rows=body, notes=notes)]
