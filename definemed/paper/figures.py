"""The paper's figures (2, 3, 4, 5) from the result files, with matplotlib.

Deterministic output: the Agg backend, one fixed set of rcParams (matplotlib's defaults plus the
settings below, whatever a user's matplotlibrc says), PDFs without a creation date and PNGs
without the Software entry, so the same inputs give byte-identical files. Sizes are the paper's:
3.3 inches for one column, 6.9 for the page width, 7-9 pt text.
"""

from __future__ import annotations

import contextlib
import re
import textwrap

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from definemed.io import atomic_path  # noqa: E402

COLUMN_WIDTH = 3.3  # inches, one column of the two-column paper
PAGE_WIDTH = 6.9

RC = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: the same glyphs on every machine
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.dpi": 100,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,  # embedded TrueType: text stays text in the PDF
    "pdf.compression": 6,
    "svg.hashsalt": "definemed",
    "axes.grid": False,
    "lines.linewidth": 1.2,
}


@contextlib.contextmanager
def paper_style():
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(RC)
        yield


def save(fig, pdf, png) -> None:
    """Write `fig` as PDF and PNG, atomically and without timestamps or software versions
    (savefig reads dpi and bbox from rcParams: the style holds while saving too)."""
    with paper_style():
        with atomic_path(pdf, suffix=".pdf") as tmp:
            fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None})
        with atomic_path(png, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def _annotate(ax, values, fmt, dark):
    """Write each value in its cell, white where `dark(value)` says the colour is dark."""
    for (i, j), v in np.ndenumerate(values):
        if np.isnan(v):
            continue
        ax.text(j, i, fmt(v), ha="center", va="center", fontsize=6, color="white" if dark(v) else "black")


# ---------------------------------------------------------------- Figure 2


def figure2(winrate: dict, display: dict[str, str]):
    """Pairwise win rates (results/judges/pairwise/winrate.json): row model against column model."""
    models = winrate["models"]
    names = [display.get(m, winrate.get("display", {}).get(m, m)) for m in models]
    n = len(models)
    values = np.full((n, n), np.nan)
    for i, a in enumerate(models):
        for j, b in enumerate(models):
            cell = winrate["matrix"].get(a, {}).get(b)
            if i != j and cell is not None and cell.get("win_rate") is not None:
                values[i, j] = cell["win_rate"]
    with paper_style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 0.32 * n + 1.6))
        im = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu", vmin=0, vmax=1)
        _annotate(ax, values, lambda v: f"{100 * v:.0f}", dark=lambda v: abs(v - 0.5) > 0.3)
        ax.set_xticks(range(n), names, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(n), names)
        ax.set_xlabel("Opponent")
        ax.set_ylabel("Model")
        cbar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
        cbar.set_label("Win rate of row against column (%)")
        cbar.set_ticks([0, 0.25, 0.5, 0.75, 1], labels=["0", "25", "50", "75", "100"])
        # long judge names (the miniature's rubric names its rules) wrap
        ax.set_title(textwrap.fill(f"Pairwise win rates (judge: {winrate['judge']})", 90))
    return fig


# ---------------------------------------------------------------- Figure 3


def figure3(counts: dict, display: dict[str, str], models: list[str] | None = None):
    """Failure-mode counts per model (results/judges/failure_modes/counts.json): a heatmap of the
    share of judged responses showing each mode, the count in each cell."""
    modes = counts["modes"]
    models = models or list(counts["models"])
    names = [display.get(m, counts["models"][m].get("display", m)) for m in models]
    shares = np.array([[counts["models"][m]["shares"].get(mode, 0.0) for m in models] for mode in modes])
    values = np.array([[counts["models"][m]["counts"].get(mode, 0) for m in models] for mode in modes])
    with paper_style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 0.24 * len(modes) + 1.9))
        im = ax.imshow(shares, cmap="Reds", vmin=0, vmax=max(float(shares.max()), 1e-9), aspect="auto")
        top = float(shares.max()) * 0.6
        for (i, j), v in np.ndenumerate(values):
            ax.text(
                j,
                i,
                str(int(v)),
                ha="center",
                va="center",
                fontsize=6,
                color="white" if shares[i, j] > top else "black",
            )
        ax.set_xticks(range(len(models)), names, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(len(modes)), [m.replace("_", " ").capitalize() for m in modes])
        cbar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
        cbar.set_label("Share of judged responses")
        judged = sorted({counts["models"][m]["judged"] for m in models})
        n = str(judged[0]) if len(judged) == 1 else f"{judged[0]}-{judged[-1]}"
        ax.set_title(textwrap.fill(f"Failure modes (judge: {counts['judge']}; {n} judged responses per model)", 90))
    return fig


# ---------------------------------------------------------------- Figure 4


def figure4(curve: dict):
    """Precision and recall of the classifier on the test split against the decision threshold
    (results/classifier/threshold_curve.json), the chosen threshold marked."""
    t = np.asarray(curve["threshold"], dtype=float)
    precision = np.asarray([np.nan if p is None else p for p in curve["precision"]], dtype=float)
    recall = np.asarray(curve["recall"], dtype=float)
    chosen = curve["chosen_threshold"]
    k = int(np.argmin(np.abs(t - chosen)))
    with paper_style():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.4))
        ax.plot(t, precision, label="Precision", color="tab:blue")
        ax.plot(t, recall, label="Recall", color="tab:orange", linestyle="--")
        ax.axvline(chosen, color="grey", linewidth=0.8, linestyle=":")
        ax.plot([t[k]], [precision[k]], "o", color="tab:blue", markersize=4)
        ax.plot([t[k]], [recall[k]], "o", color="tab:orange", markersize=4)
        ax.annotate(
            f"threshold {chosen:g}\nP = {precision[k]:.2f}, R = {recall[k]:.2f}",
            xy=(chosen, min(precision[k], recall[k])),
            xytext=(-6, -28),
            textcoords="offset points",
            ha="right",
            fontsize=7,
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("Decision threshold on P(medical)")
        ax.set_ylabel("Score on the test split")
        ax.legend(loc="lower left", frameon=False)
    return fig


# ---------------------------------------------------------------- Figure 5


def figure5(points: list[dict], display: dict[str, str], unit: str = "nodes"):
    """Training throughput against node count (results/scaling/<run>/nodes-<n>.json), each run
    with the ideal linear scaling from its smallest node count."""
    runs: dict[str, list[dict]] = {}
    for p in points:
        runs.setdefault(p["run"], []).append(p)
    with paper_style():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.4))
        markers = "osD^v<>"
        for i, (run, pts) in enumerate(sorted(runs.items())):
            pts = sorted(pts, key=lambda p: p["nodes"])
            nodes = np.array([p["nodes"] for p in pts], dtype=float)
            tps = np.array([p["tokens_per_s"] for p in pts], dtype=float)
            line = ax.plot(nodes, tps, marker=markers[i % len(markers)], markersize=4, label=display.get(run, run))
            ideal = tps[0] * nodes / nodes[0]
            ax.plot(nodes, ideal, linestyle=":", color=line[0].get_color(), linewidth=0.8)
            for x, y, p in zip(nodes, tps, pts):
                ax.annotate(
                    f"{p['tokens_per_s_per_device']:,.0f} per device",
                    (x, y),
                    xytext=(3, -9 - 8 * i),  # each run's labels a line lower: equal throughputs stay legible
                    textcoords="offset points",
                    fontsize=6,
                    color=line[0].get_color(),
                )
        all_nodes = sorted({p["nodes"] for p in points})
        ax.set_xticks(all_nodes)
        ax.set_xlabel(f"Number of {unit}")
        ax.set_ylabel("Training throughput (tokens/s)")
        ax.plot([], [], linestyle=":", color="grey", linewidth=0.8, label="linear scaling")
        ax.legend(loc="upper left", frameon=False)
        ax.set_ylim(bottom=0)
        ax.margins(x=0.15)
    return fig


# ---------------------------------------------------------------- Figure 1


_NODE = re.compile(r'^\s*(\d+)\[label = "([^"]+)"')
_EDGE = re.compile(r"^\s*(\d+) -> (\d+)")


def parse_rulegraph(dot: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Rule names by node id and (upstream, downstream) edges of `snakemake --rulegraph` output."""
    labels = {m.group(1): m.group(2) for m in map(_NODE.match, dot.splitlines()) if m}
    edges = [(m.group(1), m.group(2)) for m in map(_EDGE.match, dot.splitlines()) if m]
    if not labels:
        raise ValueError("no rules in the rule graph (is it `snakemake --rulegraph` output?)")
    return labels, edges


# Figure 1's stages: the paper's high-level process (sections 1 and 3), each stage with the rules
# of this workflow that do it. The figure draws a stage only where one of its rules is in the run's
# rule graph and an arrow only where the graph leads from one stage's rules to the next's, so a
# workflow that stops doing a step, or reorders two, no longer draws them (it fails instead).
PROCESS_STAGES = [
    ("FineWeb2-de", "German web documents (3.1)", ("download_fineweb_shard", "make_fixture_shard")),
    ("LLM labels", "Mixtral-8x7B-Instruct, zero-shot (3.2, A.1)", ("label_documents",)),
    ("Classifier", "XLM-RoBERTa trained on the labels (3.2, A.2)", ("train_classifier",)),
    ("FineMed-de", "FineWeb2-de filtered by the classifier (3.3)", ("score_shard", "filter_shard")),
    ("Continual pre-training", "two epochs on FineMed-de (4.2, A.3)", ("train_cpt",)),
    ("Merging", "SLERP with the instruct base (4.3, A.4)", ("merge_slerp",)),
    (
        "Evaluation",
        "benchmarks, pairwise win rates, failure modes (5)",
        ("benchmark_medical", "benchmark_general", "judge_pairwise", "judge_failure_modes"),
    ),
]


def process_stages(labels: dict[str, str], edges: list[tuple[str, str]]) -> list[tuple[str, str, list[str]]]:
    """(stage, what it is, its rules in the graph) for every stage of PROCESS_STAGES the rule graph
    has, in order; a ValueError where the graph does not lead from a stage's rules to the next's."""
    children: dict[str, set[str]] = {}
    for a, b in edges:
        children.setdefault(labels[a], set()).add(labels[b])
    present = set(labels.values())
    stages = [(name, what, [r for r in rules if r in present]) for name, what, rules in PROCESS_STAGES]
    stages = [s for s in stages if s[2]]
    if not stages:
        raise ValueError("none of the process stages' rules is in the rule graph")

    def reaches(sources: list[str], targets: set[str]) -> bool:
        seen, todo = set(sources), list(sources)
        while todo:
            for nxt in children.get(todo.pop(), ()):
                if nxt in targets:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    for (a, _, ra), (b, _, rb) in zip(stages, stages[1:]):
        if not reaches(ra, set(rb)):
            raise ValueError(f"the rule graph does not lead from {a} ({', '.join(ra)}) to {b} ({', '.join(rb)})")
    return stages


def figure1(dot: str):
    """The paper's Figure 1, its high-level process (sections 1, 3), one box per stage the
    workflow's rule graph has (process_stages), left to right at page width; under each box the
    rules that do it."""
    labels, edges = parse_rulegraph(dot)
    stages = process_stages(labels, edges)
    n = len(stages)
    with paper_style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 1.9))
        fig.subplots_adjust(left=0, right=1, bottom=0, top=1)  # the page width is the process's width
        for i, (name, what, rules) in enumerate(stages):
            ax.add_patch(
                FancyBboxPatch(
                    (i - 0.4, 0.45), 0.8, 0.34, boxstyle="round,pad=0.02", fc="#e8f0fa", ec="#4a6fa5", lw=0.8
                )
            )
            ax.text(i, 0.62, textwrap.fill(name, 12), ha="center", va="center", fontsize=6.8, fontweight="bold")
            ax.text(i, 0.36, textwrap.fill(what, 17), ha="center", va="top", fontsize=6.5)
            ax.text(i, -0.22, "\n".join(textwrap.fill(r.replace("_", " "), 18) for r in rules), ha="center",
                    va="top", fontsize=6, color="0.4", style="italic")  # fmt: skip
            if i:
                ax.annotate("", (i - 0.45, 0.62), (i - 0.55, 0.62),
                            arrowprops={"arrowstyle": "-|>", "color": "#4a6fa5", "lw": 0.9})  # fmt: skip
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_ylim(-0.8, 0.85)
        ax.axis("off")
    return fig
