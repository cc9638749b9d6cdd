"""Reproduced against reported: the paper's Tables 4, 8, 9 and 11 (paper/reported/*.csv) cell by
cell beside the numbers computed from results/.

Reported CSVs keep the paper's headers and cells as printed ("44.44 ± 4.29", "72h", "25.1B"); their
second column `display` names the model a row reports, as config `display` keys write it (Table 11
prints e.g. "Mistral-7B-Instruct-Medical" for DeFineMed-Mistral-7B). A row is matched to the config
model, CPT run or merge whose display name is that (after stripping `paper.display_prefix`, "tiny "
in the miniature).

Accuracy cells: difference in percentage points and in standard errors of the difference,
z = (reproduced - reported) / sqrt(se_reproduced^2 + se_reported^2); |z| > flag_sigma is flagged.
Table 8 (counts, no standard errors): relative difference, flagged beyond relative_tolerance.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from definemed.config import Settings
from definemed.paper.tables import average, table8_values


@dataclass(frozen=True)
class ReportSettings(Settings):
    """The paper section as the reproduction report reads it (without the scaling figure's part)."""

    SECTION: ClassVar[str] = "paper"
    display_prefix: str
    table8: dict
    reported_columns: dict[str, dict[str, str]]
    claims: dict
    flag_sigma: float
    relative_tolerance: float


MINIATURE_NOTE = (
    "**Miniature run: these numbers are not comparable to the paper's.** The miniature trains tiny "
    "random-init models on a generated German fixture corpus on CPU; it exercises the comparison, "
    "nothing more. Flags below say nothing about the paper."
)


def read_reported(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "Model" not in rows[0] or "display" not in rows[0]:
        raise ValueError(f"{path}: expected the columns Model, display, then the paper's columns")
    return rows


def parse_acc(cell: str) -> tuple[float, float]:
    """'44.44 ± 4.29' -> (44.44, 4.29) in percent."""
    m = re.fullmatch(r"\s*(-?[0-9.]+)\s*±\s*([0-9.]+)\s*", cell)
    if not m:
        raise ValueError(f"not an 'accuracy ± stderr' cell: {cell!r}")
    return float(m.group(1)), float(m.group(2))


def parse_quantity(cell: str) -> float:
    """Table 8's cells: '72h' -> 72 (hours), '25.1B' -> 2.51e10, '2970' -> 2970."""
    m = re.fullmatch(r"\s*([0-9.,]+)\s*([hkMB]?)\s*", cell)
    if not m:
        raise ValueError(f"not a Table 8 quantity: {cell!r}")
    scale = {"": 1, "h": 1, "k": 1e3, "M": 1e6, "B": 1e9}[m.group(2)]
    return float(m.group(1).replace(",", "")) * scale


def display_index(display: dict[str, str], prefix: str = "") -> dict[str, str]:
    """Printed name -> config key, `prefix` stripped from the config's display names."""
    out = {}
    for key, name in display.items():
        if prefix and name.startswith(prefix):
            name = name[len(prefix) :]
        out[name] = key
    return out


@dataclass
class Cell:
    table: str
    row: str  # as the paper prints it
    key: str | None  # config key it maps to
    column: str
    reported: str
    reproduced: str = ""
    difference: str = ""
    z: float | None = None
    relative: float | None = None
    flagged: bool = False
    status: str = "compared"


def compare_benchmark(
    table: str,
    reported: list[dict],
    columns: dict[str, str],
    results: dict[str, dict[str, dict]],
    index: dict[str, str],
    flag_sigma: float = 2.0,
) -> list[Cell]:
    """Cells of a benchmark table. `columns`: printed header -> task key (the "Average" column is
    recomputed from the row's tasks, only where all of them have results); `results[key][task]`:
    the benchmark JSON of that model (models and tasks missing from it are reported as such)."""
    cells = []
    tasks = list(columns.values())
    for row in reported:
        key = index.get(row["display"])
        have = results.get(key, {}) if key is not None else {}
        for header in [*columns, "Average"]:
            cell = Cell(table, row["Model"], key, header, row[header])
            needed = tasks if header == "Average" else [columns[header]]
            if key is None or key not in results:
                cell.status = (
                    f"not reproduced: no model displayed as {row['display']!r}"
                    if key is None
                    else f"not reproduced: {key} is not a row of this table"
                )
            elif not all(t in have for t in needed):
                cell.status = "not reproduced: no result for " + ", ".join(t for t in needed if t not in have)
            if cell.status != "compared":
                cells.append(cell)
                continue
            paper_acc, paper_se = parse_acc(row[header])
            acc, se = average([(have[t]["accuracy"], have[t]["stderr"]) for t in needed])
            acc, se = 100 * acc, 100 * se
            diff = acc - paper_acc
            scale = math.sqrt(se * se + paper_se * paper_se)
            cell.reproduced = f"{acc:.2f} ± {se:.2f}"
            cell.difference = f"{diff:+.2f}"
            cell.z = diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)
            cell.flagged = abs(cell.z) > flag_sigma
            cells.append(cell)
    return cells


TABLE8_COLUMNS = {"Num GPUs": "devices", "Time": "hours", "Steps": "steps", "Tokens": "tokens"}


def compare_table8(
    reported: list[dict],
    runs: dict[str, tuple[dict, list[dict]]],
    index: dict[str, str],
    relative_tolerance: float = 0.05,
    clusters: dict[str, str] | None = None,
) -> list[Cell]:
    """Table 8: `runs[run] = (summary.json, training_log rows)`; `clusters[run]` the site the run's
    config names (cpt.cluster), compared by name."""
    clusters = clusters or {}
    cells = []
    for row in reported:
        key = index.get(row["display"])
        for header in ("Cluster", "Accelerator", *TABLE8_COLUMNS):
            cell = Cell("table8", row["Model"], key, header, row[header])
            if key not in runs:
                cell.status = (
                    f"not reproduced: no CPT run displayed as {row['display']!r}"
                    if key is None
                    else f"not reproduced: {key} is not in paper.table8.runs"
                )
                cells.append(cell)
                continue
            v = table8_values(*runs[key])
            v["hours"] = v["seconds"] / 3600
            if header == "Cluster":
                # a name from config, not a measurement: said, not counted among the flags
                cell.reproduced = clusters.get(key, "")
                if not cell.reproduced:
                    cell.status = "not recorded: no cpt.cluster"
                else:
                    same = cell.reproduced == row[header]
                    cell.status = "as configured: " + ("the paper's site" if same else "another site")
            elif header == "Accelerator":
                cell.reproduced = v["accelerator"]
                cell.status = "as recorded (not compared)"
            else:
                ours, theirs = float(v[TABLE8_COLUMNS[header]]), parse_quantity(row[header])
                cell.reproduced = f"{ours:.4g}"
                cell.difference = f"{ours - theirs:+.4g}"
                cell.relative = ours / theirs - 1 if theirs else math.inf
                cell.flagged = abs(cell.relative) > relative_tolerance
            cells.append(cell)
    return cells


def corpus_note(inputs_record: dict) -> str | None:
    """What of FineWeb2 the run read (results/inputs.json): a deliberate subset is said up front,
    since every number downstream of the corpus reflects it. None for the miniature's fixture."""
    files = inputs_record.get("fineweb_files")
    if not files:
        return None
    if files["shard_subset"]:
        return (
            f"**A subset of the corpus:** this run read {files['read']} of the {files['listed']} FineWeb2"
            f" files of `{files['manifest']}` (`fineweb.shard_subset: {files['shard_subset']}`); FineMed-de,"
            " the trained models and every number below reflect that subset, not the paper's corpus."
        )
    return f"Corpus: all {files['listed']} FineWeb2 files of `{files['manifest']}`."


def _fmt_z(z):
    return "" if z is None else f"{z:+.2f}"


def render(
    sections: dict[str, list[Cell]],
    miniature: bool,
    flag_sigma: float,
    relative_tolerance: float,
    titles: dict,
    notes: dict | None = None,
    corpus: str | None = None,
) -> str:
    compared = [c for cells in sections.values() for c in cells if c.z is not None or c.relative is not None]
    flagged = [c for c in compared if c.flagged]
    notes = notes or {}
    missing = sorted({(c.table, c.row) for cells in sections.values() for c in cells if c.status.startswith("not rep")})
    out = ["# Reproduction report: reproduced against reported", ""]
    if miniature:
        out += [MINIATURE_NOTE, ""]
    if corpus:
        out += [corpus, ""]
    out += [
        f"Cells compared: {len(compared)}; flagged: {len(flagged)} (accuracy cells beyond {flag_sigma:g} standard"
        f" errors of the difference, Table 8 beyond {100 * relative_tolerance:g}% relative difference);"
        f" paper rows not reproduced: {len(missing)}; tables not compared: {len(notes)}.",
        "",
        "Difference in standard errors: (reproduced - reported) / sqrt(se_reproduced^2 + se_reported^2);"
        " the Average column is recomputed as the mean of the row's accuracies with standard error"
        " sqrt(sum se^2) / k, the paper's rule.",
        "",
    ]
    for name, cells in sections.items():
        out += [f"## {titles.get(name, name)}", ""]
        if name in notes:
            out += [notes[name], ""]
        if not cells:
            continue
        if name == "table8":
            out += [
                "| Model (paper) | Column | Paper | Reproduced | Difference | Relative | Flag |",
                "|---|---|---|---|---|---|---|",
            ]
            for c in cells:
                rel = "" if c.relative is None else f"{100 * c.relative:+.1f}%"
                flag = "**FLAG**" if c.flagged else ("" if c.status == "compared" else c.status)
                out.append(
                    f"| {c.row} | {c.column} | {c.reported} | {c.reproduced} | {c.difference} | {rel} | {flag} |"
                )
        else:
            out += [
                "| Model (paper) | Column | Paper | Reproduced | Difference | Difference / SE | Flag |",
                "|---|---|---|---|---|---|---|",
            ]
            for c in cells:
                flag = "**FLAG**" if c.flagged else ("" if c.status == "compared" else c.status)
                z = _fmt_z(c.z)
                out.append(f"| {c.row} | {c.column} | {c.reported} | {c.reproduced} | {c.difference} | {z} | {flag} |")
        out.append("")
    return "\n".join(out)


def judge_note(winrate: dict | None, counts: dict | None, miniature: bool) -> str:
    """The judges behind Figures 2 and 3 and the judge claims, by name, with the pairwise judge's
    position bias (definemed.judges.stats.position_bias)."""
    out = ["## Judges (5.2, 5.3; Figures 2 and 3)", ""]
    if winrate is not None:
        bias = winrate.get("position_bias") or {}
        share = "n/a" if bias.get("share") is None else f"{bias['share']:.2f}"
        out.append(
            f"- Pairwise (Figure 2): {winrate['judge']}; {winrate['verdicts']} verdicts, {winrate['invalid']} invalid;"
            f" position bias (share of decisive verdicts won by the first-presented response): {share}"
            f" of {bias.get('decisive', 0)}."
        )
    if counts is not None:
        out.append(f"- Failure modes (Figure 3): {counts['judge']}.")
    names = [j["judge"] for j in (winrate, counts) if j is not None]
    notes = (
        ["The miniature's judges are not the paper's (GPT-4.1-mini and GPT-4.1 through the API)."] if miniature else []
    )
    if any("rules:" in n for n in names):  # definemed.judges.client.judge_name of the rubric backend
        notes.append(
            "A rubric judge is no model: stated rules in code (definemed/judges/rubric.py), fixed before any"
            " model's output was seen; each pairwise verdict names the rules that decided it."
        )
    if notes:
        out += ["", " ".join(notes)]
    return "\n".join(out) + "\n"


def reported_path(reported_dir, table: str) -> Path:
    return Path(reported_dir) / f"{table}.csv"
