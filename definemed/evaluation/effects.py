"""Effects between two models on the same benchmark items, with their noise.

Two rows of Tables 4, 9 or 11 answer the same items, so the standard error of their difference is
the paired one: the standard deviation of the per-item differences over the square root of the item
count. Pooled over several columns (e.g. the four medical ones), the items of all columns are taken
together, each item once. An effect "holds" when the mean difference exceeds `sigma` standard
errors in the claimed direction, is "contradicted" beyond `sigma` the other way, and is "within
noise" otherwise.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from definemed.evaluation.benchmarks import sample_scores
from definemed.io import read_jsonl

HOLDS, WITHIN_NOISE, CONTRADICTED = "holds", "within noise", "contradicted"


@dataclass(frozen=True)
class Difference:
    """Mean of (after - before) over paired items, its standard error and the item count."""

    mean: float
    stderr: float
    n: int

    def verdict(self, sigma: float = 2.0) -> str:
        if self.mean > sigma * self.stderr:
            return HOLDS
        if self.mean < -sigma * self.stderr:
            return CONTRADICTED
        return WITHIN_NOISE

    def as_dict(self, sigma: float = 2.0) -> dict:
        return {"difference": self.mean, "stderr": self.stderr, "n": self.n, "verdict": self.verdict(sigma)}


def paired_difference(before: list[float], after: list[float]) -> Difference:
    """after - before, item by item (same items, same order)."""
    if len(before) != len(after):
        raise ValueError(f"paired items differ in number: {len(before)} vs {len(after)}")
    n = len(before)
    if n < 2:
        raise ValueError(f"a paired difference needs at least 2 items, got {n}")
    diffs = [b - a for a, b in zip(before, after)]
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    return Difference(mean, math.sqrt(var / n), n)


def item_scores(results_dir, model: str, tasks: dict[str, dict]) -> list[float]:
    """Per-item metric values of `model` over the task columns `tasks` ({key: benchmarks.tasks
    entry}), from lm-eval's per-sample logs (results/benchmarks/<model>/<key>.samples.jsonl), in
    column order and, within a column, in (subject task, document) order."""
    out: list[float] = []
    for key, spec in tasks.items():
        path = Path(results_dir) / "benchmarks" / model / f"{key}.samples.jsonl"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no per-sample log of {model} on {key}")
        samples = read_jsonl(path)
        by_task: dict[str, list[dict]] = {}
        for s in samples:
            by_task.setdefault(s.get("task", key), []).append(s)
        for group in by_task.values():
            out += sample_scores(group, spec["metric"], spec.get("filter", "none"))
    return out


def model_difference(results_dir, before: str, after: str, tasks: dict[str, dict]) -> Difference:
    """after - before over the pooled items of `tasks` (paired: the same items)."""
    return paired_difference(item_scores(results_dir, before, tasks), item_scores(results_dir, after, tasks))


def constant_answer(results_dir, model: str, key: str) -> int | None:
    """The option index `model` picks for every item of column `key`, or None when its picks vary:
    a row answering one constant option measures the gold-letter distribution, not knowledge."""
    path = Path(results_dir) / "benchmarks" / model / f"{key}.samples.jsonl"
    picks = set()
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        s = json.loads(line)
        scores = [float(r[0]) if isinstance(r, list) else float(r) for r in s["filtered_resps"]]
        picks.add(max(range(len(scores)), key=scores.__getitem__))
        if len(picks) > 1:
            return None
    return picks.pop() if picks else None


def perplexity_shift(perplexity: dict) -> dict:
    """From a run's perplexity.json: the mean per-document change in token NLL (CPT - base) on
    held-out medical and on held-out general text, each with its paired standard error, and
    general - medical with the unpaired error of two independent document sets. CPT "lowers the
    medical perplexity more than the general one" when that last difference holds."""

    def shift(part: dict) -> Difference:
        pairs = [
            (b, c)
            for b, c in zip(part["base"]["document_nll"], part["cpt"]["document_nll"])
            if b is not None and c is not None
        ]
        return paired_difference([b for b, _ in pairs], [c for _, c in pairs])

    medical, general = shift(perplexity), shift(perplexity["general"])
    gap = Difference(general.mean - medical.mean, math.hypot(general.stderr, medical.stderr), medical.n + general.n)
    return {
        "medical_nll_change": medical.as_dict(),
        "general_nll_change": general.as_dict(),
        "medical_lowered_more": gap.as_dict(),
    }


def comparisons(config: dict) -> list[dict]:
    """The effects the miniature is built to show (issue: CPT raises medical knowledge, merging
    keeps part of it and restores general ability, FineMed-de beats a random FineWeb2 sample):
    (name, group, before, after) for every FineMed-de run and every ablation, from config alone."""
    runs = config["cpt"]["runs"]
    out = []
    for run, spec in runs.items():
        if spec["corpus"] != "finemed":
            continue
        base, merge = spec["base"], f"{run}-slerp"
        for group in ("medical", "general"):
            out += [
                {"name": "CPT vs base", "run": run, "group": group, "before": base, "after": run},
                {"name": "merge vs base", "run": run, "group": group, "before": base, "after": merge},
                {"name": "merge vs CPT", "run": run, "group": group, "before": run, "after": merge},
            ]
    for run, spec in runs.items():
        if spec["corpus"] == "finemed":
            continue
        twin = next((r for r, s in runs.items() if s["corpus"] == "finemed" and s["base"] == spec["base"]), None)
        if twin is None:
            continue
        out += [
            {"name": "CPT vs base", "run": run, "group": "medical", "before": spec["base"], "after": run},
            {"name": "FineMed-de CPT vs random CPT", "run": twin, "group": "medical", "before": run, "after": twin},
        ]
    return out


def measure(config: dict, results_dir, perplexities: dict[str, dict], sigma: float = 2.0) -> dict:
    """Every comparison of `comparisons(config)` over the pooled columns of its group, and every
    run's perplexity shift: the content of results/effects.json."""
    tasks = config["benchmarks"]["tasks"]
    groups = {g: {k: t for k, t in tasks.items() if t["group"] == g} for g in ("medical", "general")}
    rows = []
    for c in comparisons(config):
        if not groups[c["group"]]:
            continue
        diff = model_difference(results_dir, c["before"], c["after"], groups[c["group"]])
        rows.append({**c, **diff.as_dict(sigma)})
    return {
        "rule": f"paired over the items of a group's columns; holds beyond {sigma:g} standard errors of the difference",
        "sigma": sigma,
        "columns": {g: list(t) for g, t in groups.items()},
        "comparisons": rows,
        "perplexity": {run: perplexity_shift(p) for run, p in sorted(perplexities.items())},
    }


def render_effects(effects: dict, display: dict[str, str], miniature: bool) -> str:
    """The report's section on results/effects.json: every comparison with its noise, the
    perplexity shifts, and (for the miniature) which pattern the numbers show, read off the verdicts."""
    name = lambda m: display.get(m, m)  # noqa: E731
    lines = [
        "## Effects with their noise",
        "",
        f"Rule: {effects['rule']}. Differences in percentage points (after - before).",
        "",
        "| Run | Comparison | Columns | Difference | SE | Items | Verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in effects["comparisons"]:
        lines.append(
            f"| {name(r['run'])} | {r['name']}: {name(r['before'])} -> {name(r['after'])} | {r['group']}"
            f" | {100 * r['difference']:+.2f} | {100 * r['stderr']:.2f} | {r['n']} | {r['verdict']} |"
        )
    lines += [
        "",
        "Held-out token NLL change (CPT - base), mean over documents ± SE; the last column: the general",
        "change minus the medical one (CPT lowered the medical perplexity more than the general one).",
        "",
        "| Run | Medical | General | General - medical | Verdict |",
        "|---|---|---|---|---|",
    ]
    for run, p in effects["perplexity"].items():
        m, g, gap = p["medical_nll_change"], p["general_nll_change"], p["medical_lowered_more"]
        lines.append(
            f"| {name(run)} | {m['difference']:+.3f} ± {m['stderr']:.3f} | {g['difference']:+.3f} ± {g['stderr']:.3f}"
            f" | {gap['difference']:+.3f} ± {gap['stderr']:.3f} | {gap['verdict']} |"
        )
    if miniature:
        lines += ["", *_pattern(effects, name)]
    return "\n".join(lines) + "\n"


def _pattern(effects: dict, name) -> list[str]:
    def verdicts(comparison: str, group: str) -> dict[str, str]:
        return {
            r["run"]: r["verdict"] for r in effects["comparisons"] if r["name"] == comparison and r["group"] == group
        }

    def sentence(what: str, found: dict[str, str]) -> str:
        if not found:
            return f"- {what}: not measured."
        return f"- {what}: " + "; ".join(f"{name(run)} {v}" for run, v in found.items()) + "."

    return [
        "The miniature's pattern (its bases were fitted on ordinary web text that states the general",
        "facts, then trained on medical text only; this is the miniature's design, not the paper's result:",
        "the paper's 7B runs gained on Table 11 while its 24B run lost, 70.79 -> 68.41, and its merge",
        "recovered, 70.11):",
        "",
        sentence("CPT raises the medical average over the base", verdicts("CPT vs base", "medical")),
        sentence("the merge keeps part of that gain over the base", verdicts("merge vs base", "medical")),
        sentence("CPT raises the general average over the base", verdicts("CPT vs base", "general")),
        sentence("the merge raises the general average over the CPT model", verdicts("merge vs CPT", "general")),
        sentence(
            "FineMed-de CPT beats random FineWeb2 CPT on the medical average",
            verdicts("FineMed-de CPT vs random CPT", "medical"),
        ),
    ]
