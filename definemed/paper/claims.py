"""The paper's claims as it writes them, each checked with its noise on two sets of numbers: this
run's results, and the paper's own reported tables (paper/reported/*.csv).

Every claim quotes its sentence and section (numbers the text lost are marked [LOST]; the abstract
on arXiv keeps "approximately 3.5-fold") and says how it is checked. Verdicts:

- "holds": the effect the sentence claims exceeds `SIGMA` standard errors of the difference;
- "within noise": it does not, nor does its opposite;
- "contradicted": the opposite effect exceeds `SIGMA` standard errors;
- "not computable: <why>": the source is degenerate (a pairwise judge picking the first response
  in more than `POSITION_BIAS_LIMIT` of its decisive verdicts; a failure-mode judge giving one
  verdict vector to every response of a model; a model answering one constant option on a
  benchmark column), or the workflow has no measure of the claim.

Noise rules (stated again in the report):
- Benchmarks, this run: paired over items (definemed.evaluation.effects.paired_difference): the two rows answer
  the same items, so the standard error is that of the per-item differences; several columns are
  pooled item by item.
- Benchmarks, the paper's tables: no per-item data, so the two rows' printed standard errors are
  combined unpaired, sqrt(se_a^2 + se_b^2) (conservative: the paired error of rows answering the
  same items is smaller); an average over columns is their mean with sqrt(sum se^2) / k, the rule
  the paper's Average column follows.
- Win rates (Figure 2): multinomial standard error of a pair's (wins - losses) / n; two pairs'
  rates are independent samples, their errors combined as sqrt(se_1^2 + se_2^2); a single rate has
  the binomial error sqrt(p (1 - p) / n). Not the Wilson intervals of judge_stats (which bound one
  rate, not a difference).
- Failure-mode shares (Figure 3): two proportions of independent response sets,
  sqrt(p1 (1 - p1) / n1 + p2 (1 - p2) / n2) (unpaired: the counts keep no per-response pairing).
- Throughput (A.3, Figure 5): standard error of the mean over the measured optimizer steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import mean

from definemed.evaluation.effects import CONTRADICTED, HOLDS, WITHIN_NOISE, Difference, paired_difference

NOT_COMPUTABLE = "not computable"
VERDICTS = (HOLDS, WITHIN_NOISE, CONTRADICTED, NOT_COMPUTABLE)
SIGMA = 2.0
POSITION_BIAS_LIMIT = 0.95
FOLD = 3.5  # the arXiv abstract: "an approximately 3.5-fold increase in the win-rate"
THROUGHPUT = 1850.0  # A.3: "approximately 1850 tokens per second per GPU"
THROUGHPUT_TOLERANCE = 0.1  # NOT IN PAPER: "approximately" read as within 10%
NEAR_LINEAR = 0.9  # NOT IN PAPER: "near-linear scaling" read as an efficiency of at least 0.9

RULES = [
    f"holds: the claimed effect exceeds {SIGMA:g} standard errors of the difference; contradicted: the opposite"
    f" effect does; within noise: neither. A claim over several parts (families, columns) holds when every part"
    f" holds and is contradicted when any part is.",
    "benchmarks, this run: the standard error of the paired per-item differences (the rows answer the same items;"
    " several columns pooled item by item).",
    "benchmarks, the paper's tables: no per-item data; the rows' printed standard errors combined unpaired,"
    " sqrt(se_a^2 + se_b^2) (conservative), an average over columns with sqrt(sum se^2) / k (the paper's Average).",
    "win rates: the multinomial standard error of (wins - losses) / n for one pair; two pairs combined as"
    " independent samples; a single rate binomial, sqrt(p (1 - p) / n).",
    "failure-mode shares: two independent proportions, sqrt(p1 (1 - p1) / n1 + p2 (1 - p2) / n2).",
    "comparable (no difference claimed): the difference lies within the noise band; this can fail to find a"
    " difference, not prove equality.",
    f"not computable: a pairwise judge picking the first-presented response in more than {POSITION_BIAS_LIMIT:g}"
    " of its decisive verdicts; a failure-mode judge giving one verdict vector to every response of a model"
    " (or, for a claimed change of a mode, the same verdict on that mode to every response of both models: such a"
    " part is left out and the claim cannot hold);"
    " a model answering one constant option on a benchmark column; or no measure in the workflow.",
]


@dataclass
class Family:
    """An instruct base, its FineMed-de CPT model and their SLERP merge (model keys)."""

    run: str
    base: str
    cpt: str
    merge: str


@dataclass
class Score:
    """A model on a set of benchmark columns: mean accuracy, its standard error, and the per-item
    scores when the source keeps them (this run) or None (the paper's tables)."""

    mean: float
    stderr: float
    items: list[float] | None = None


@dataclass
class Benchmarks:
    """Benchmark numbers of one source. `items[model][task]`: per-item scores (this run);
    `cells[model][task]`: (accuracy, stderr) as fractions (the paper's tables); `constant[model][task]`:
    the option a model answers for every item of a column (definemed.evaluation.effects.constant_answer)."""

    items: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    cells: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    constant: dict[str, dict[str, int]] = field(default_factory=dict)

    def score(self, model: str, tasks: list[str]) -> Score | None:
        if model in self.items and tasks and all(t in self.items[model] for t in tasks):
            pooled = [x for t in tasks for x in self.items[model][t]]
            n = len(pooled)
            m = mean(pooled)
            var = sum((x - m) ** 2 for x in pooled) / (n - 1) if n > 1 else 0.0
            return Score(m, math.sqrt(var / n) if n else 0.0, pooled)
        if model in self.cells and tasks and all(t in self.cells[model] for t in tasks):
            cells = [self.cells[model][t] for t in tasks]
            return Score(mean(a for a, _ in cells), math.sqrt(sum(s * s for _, s in cells)) / len(cells))
        return None


@dataclass
class Evidence:
    families: list[Family]
    medical_tasks: list[str]
    general_tasks: list[str]
    benchmarks: Benchmarks = field(default_factory=Benchmarks)
    medical_baselines: list[str] = field(default_factory=list)
    ablation: Family | None = None  # the random-FineWeb2 run on the focus family's base
    winrate: dict | None = None  # results/judges/pairwise/winrate.json
    failure_modes: dict | None = None  # results/judges/failure_modes/counts.json
    throughput: dict[str, dict] = field(default_factory=dict)  # run -> {device, step_tokens_per_s_per_device}
    scaling: dict[str, list[dict]] = field(default_factory=dict)  # run -> results/scaling/<run>/nodes-*.json
    focus_run: str | None = None  # the Qwen2.5-7B family
    large_run: str | None = None  # the Mistral-Small-24B family
    mixing_run: str | None = None  # the Mistral-7B family (5.3's language mixing)
    display: dict[str, str] = field(default_factory=dict)
    # why a source is absent (the paper's tables keep no win rates, failure modes or throughput)
    absent: dict[str, str] = field(default_factory=dict)


@dataclass
class Claim:
    section: str
    quote: str  # the paper's sentence as written
    checked: str  # how it is encoded
    verdict: str
    numbers: str = ""


class NotComputable(Exception):
    """A part of a claim has no sound number: its message says why."""


# ---------------------------------------------------------------- helpers


def _name(ev: Evidence, key: str) -> str:
    return ev.display.get(key, key)


def _family(ev: Evidence, run: str | None) -> Family:
    fam = next((f for f in ev.families if f.run == run), None)
    if fam is None:
        raise NotComputable(f"no FineMed-de run {run!r} (paper.claims)")
    return fam


def _others(ev: Evidence, run: str) -> list[Family]:
    return [f for f in ev.families if f.run != run]


def _small(ev: Evidence) -> list[Family]:
    if not ev.large_run:
        raise NotComputable("paper.claims.large_run is not set")
    return _others(ev, ev.large_run)


def _verdict(diff: Difference) -> str:
    return diff.verdict(SIGMA)


def combine(verdicts: list[str]) -> str:
    """A claim over several parts: contradicted if any part is, holds if every part does."""
    if any(v == CONTRADICTED for v in verdicts):
        return CONTRADICTED
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    return WITHIN_NOISE


def _pts(d: Difference) -> str:
    return f"{100 * d.mean:+.2f} ± {100 * d.stderr:.2f}"


def _score(ev: Evidence, model: str, tasks: list[str]) -> Score:
    for t in tasks:
        option = ev.benchmarks.constant.get(model, {}).get(t)
        if option is not None:
            letter = "ABCD"[option] if option < 4 else str(option)
            raise NotComputable(f"{_name(ev, model)} answers option {letter} for every item of {t}")
    s = ev.benchmarks.score(model, tasks)
    if s is None:
        raise NotComputable(f"no results of {_name(ev, model)} on {', '.join(tasks)}")
    return s


def difference(after: Score, before: Score) -> Difference:
    """after - before: paired over items where both keep them, else unpaired from the standard errors."""
    if after.items is not None and before.items is not None and len(after.items) == len(before.items):
        return paired_difference(before.items, after.items)
    return Difference(after.mean - before.mean, math.hypot(after.stderr, before.stderr), 0)


def bench_diff(ev: Evidence, after: str, before: str, tasks: list[str]) -> Difference:
    return difference(_score(ev, after, tasks), _score(ev, before, tasks))


def _item_combination(terms: list[tuple[float, Score]]) -> Difference | None:
    """sum(w * score) item by item when every score keeps its items (same items): a paired
    combination; None otherwise."""
    if any(s.items is None for _, s in terms) or len({len(s.items) for _, s in terms}) != 1:
        return None
    per_item = [sum(w * s.items[i] for w, s in terms) for i in range(len(terms[0][1].items))]
    n = len(per_item)
    m = mean(per_item)
    var = sum((x - m) ** 2 for x in per_item) / (n - 1)
    return Difference(m, math.sqrt(var / n), n)


def combination(ev: Evidence, terms: list[tuple[float, str]], tasks: list[str]) -> Difference:
    """A linear combination of model scores on `tasks` (e.g. a difference of two gains): paired item
    by item on this run; from the printed standard errors, as independent terms, on the paper's."""
    scores = [(w, _score(ev, m, tasks)) for w, m in terms]
    paired = _item_combination(scores)
    if paired is not None:
        return paired
    return Difference(sum(w * s.mean for w, s in scores), math.sqrt(sum((w * s.stderr) ** 2 for w, s in scores)), 0)


def _claim(section, quote, checked, body: Callable[[], tuple[str, str]]) -> Claim:
    try:
        verdict, numbers = body()
    except NotComputable as why:
        return Claim(section, quote, checked, f"{NOT_COMPUTABLE}: {why}")
    return Claim(section, quote, checked, verdict, numbers)


def k_of_n(found: list[str], k: int) -> str:
    """'k out of n settings' from per-setting verdicts of the claimed direction: holds when exactly k
    settings hold; contradicted when more than k hold or more than n - k are contradicted (fewer
    than k settings left that could favour the claim); within noise otherwise."""
    holds, against = found.count(HOLDS), found.count(CONTRADICTED)
    if holds > k or against > len(found) - k:
        return CONTRADICTED
    return HOLDS if holds == k else WITHIN_NOISE


# ---------------------------------------------------------------- benchmark claims (5.1, A.5, A.6)


def claims_benchmarks(ev: Evidence) -> list[Claim]:
    med, gen = ev.medical_tasks, ev.general_tasks
    out = []

    def cpt_improves():
        parts = [(f, bench_diff(ev, f.cpt, f.base, med)) for f in ev.families]
        if not parts:
            raise NotComputable("no FineMed-de run")
        return combine([_verdict(d) for _, d in parts]), "; ".join(
            f"{_name(ev, f.cpt)} - {_name(ev, f.base)} {_pts(d)}" for f, d in parts
        )

    out.append(
        _claim(
            "5.1",
            "Continual Pre-Training on domain-specific data consistently improves performance across multilingual"
            " models.",
            "CPT - instruct base, medical average, every family",
            cpt_improves,
        )
    )

    def qwen_over_mistral():
        q, m = _family(ev, ev.focus_run), _family(ev, ev.mixing_run)
        d = bench_diff(ev, q.base, m.base, med)
        return _verdict(d), f"{_name(ev, q.base)} - {_name(ev, m.base)} {_pts(d)}"

    out.append(
        _claim(
            "5.1",
            "Qwen2.5-7B-Instruct outperforms the Mistral-7B-Instruct model by [LOST] on average across all benchmarks",
            "Qwen2.5 base - Mistral-7B base, medical average",
            qwen_over_mistral,
        )
    )

    def weakest_base_over_biomistral():
        if not ev.medical_baselines:
            raise NotComputable("no medical baseline (benchmarks.baselines.medical)")
        bases = [f.base for f in ev.families]
        weakest = min(bases, key=lambda b: _score(ev, b, med).mean)
        bio = ev.medical_baselines[0]
        parts = [(t, bench_diff(ev, weakest, bio, [t])) for t in med]
        return k_of_n([_verdict(d) for _, d in parts], 3), f"{_name(ev, weakest)} - {_name(ev, bio)}: " + ", ".join(
            f"{t} {_pts(d)}" for t, d in parts
        )

    out.append(
        _claim(
            "5.1",
            "We observed that even our weakest base model outperforms the BioMistral baseline on three out of four"
            " benchmarks.",
            "weakest instruct base (medical average) - first medical baseline, per column; exactly 3 columns beyond"
            " noise",
            weakest_base_over_biomistral,
        )
    )

    def mistral_strongest_relative():
        m = _family(ev, ev.mixing_run)
        rel = {}
        for f in ev.families:
            base = _score(ev, f.base, med).mean
            rel[f.run] = (base, f)
        parts = []
        bm, _ = rel[m.run]
        for f in _others(ev, m.run):
            bo, _ = rel[f.run]
            # relative gain (cpt - base) / base of each, the base averages taken as fixed
            d = combination(ev, [(1 / bm, m.cpt), (-1 / bm, m.base), (-1 / bo, f.cpt), (1 / bo, f.base)], med)
            parts.append((f, d))
        return combine([_verdict(d) for _, d in parts]), "; ".join(
            f"relative gain (%) {_name(ev, m.cpt)} - {_name(ev, f.cpt)} {_pts(d)}" for f, d in parts
        )

    out.append(
        _claim(
            "5.1",
            "DeFineMed-Mistral-7B exhibits the strongest relative performance increase from continual pre-training,"
            " with an average improvement of [LOST].",
            "(CPT - base) / base on the medical average: Mistral-7B's minus every other family's (base averages fixed)",
            mistral_strongest_relative,
        )
    )

    def large_gains_least():
        large = _family(ev, ev.large_run)
        parts = [
            (f, combination(ev, [(1, f.cpt), (-1, f.base), (-1, large.cpt), (1, large.base)], med)) for f in _small(ev)
        ]
        if not parts:
            raise NotComputable("no smaller FineMed-de run")
        return combine([_verdict(d) for _, d in parts]), "; ".join(
            f"gain {_name(ev, f.cpt)} - gain {_name(ev, large.cpt)} {_pts(d)}" for f, d in parts
        )

    out.append(
        _claim(
            "5.1",
            "DeFineMed-Mistral-Small-24B also benefits from continual pre-training, though to a lesser extent than"
            " smaller models, with an average gain of [LOST].",
            "CPT - base on the medical average: each smaller family's gain minus the 24B's",
            large_gains_least,
        )
    )

    def merge_medqa():
        if "medqa_de" not in med:
            raise NotComputable("no medqa_de column")
        parts = [(f, bench_diff(ev, f.merge, f.cpt, ["medqa_de"])) for f in ev.families]
        return combine([_verdict(d) for _, d in parts]), "; ".join(
            f"{_name(ev, f.merge)} - {_name(ev, f.cpt)} {_pts(d)}" for f, d in parts
        )

    out.append(
        _claim(
            "5.1",
            "While it consistently improved performance on the MedQA benchmark",
            "merge - CPT on MedQA-de, every family",
            merge_medqa,
        )
    )

    def merge_on_average():
        k = len(ev.families)
        if not k:
            raise NotComputable("no FineMed-de run")
        terms = [(w / k, m) for f in ev.families for w, m in ((1, f.merge), (-1, f.cpt))]
        d = combination(ev, terms, med)
        return _verdict(d), f"mean over families of merge - CPT {_pts(d)}"

    out.append(
        _claim(
            "5.1",
            "On average, model merging slightly improved performance across the benchmarks",
            "merge - CPT on the medical average, averaged over the families",
            merge_on_average,
        )
    )

    def large_merge_strongest():
        large = _family(ev, ev.large_run)
        rivals = [m for f in ev.families for m in (f.base, f.cpt, f.merge) if m != large.merge]
        rivals += ev.medical_baselines
        parts = [(m, bench_diff(ev, large.merge, m, med)) for m in rivals]
        closest = min(parts, key=lambda p: p[1].mean / p[1].stderr if p[1].stderr else math.inf)
        return combine([_verdict(d) for _, d in parts]), (
            f"closest: {_name(ev, large.merge)} - {_name(ev, closest[0])} {_pts(closest[1])}"
        )

    out.append(
        _claim(
            "5.1",
            "In terms of overall performance, DeFineMed-Mistral-Small-24B-SLERP emerges as the strongest model,"
            " achieving an average accuracy of [LOST] and significantly outperforming all other models.",
            "24B merge - every other Table 4 row, medical average",
            large_merge_strongest,
        )
    )

    def qwen_merge_comparable():
        q, large = _family(ev, ev.focus_run), _family(ev, ev.large_run)
        parts = [(t, bench_diff(ev, q.merge, large.base, [t])) for t in med]
        comparable = [t for t, d in parts if _verdict(d) == WITHIN_NOISE]
        verdict = HOLDS if len(comparable) == 3 else CONTRADICTED
        return verdict, f"comparable on {len(comparable)} of {len(parts)}: " + ", ".join(
            f"{t} {_pts(d)}" for t, d in parts
        )

    out.append(
        _claim(
            "6 (5.1, 7)",
            "the DeFineMed-Qwen2.5-7B-SLERP model demonstrated performance comparable to the much larger"
            " Mistral-Small-24B-Instruct on three out of four domain-specific benchmarks.",
            "Qwen2.5 merge - Mistral-Small-24B base per medical column; comparable = within noise; holds when"
            " exactly 3 columns are (5.1 names Anatomy and Clinical Knowledge)",
            qwen_merge_comparable,
        )
    )

    def random_improves():
        if ev.ablation is None:
            raise NotComputable("no random FineWeb2-de run beside the focus family")
        d = bench_diff(ev, ev.ablation.cpt, ev.ablation.base, med)
        return _verdict(d), f"{_name(ev, ev.ablation.cpt)} - {_name(ev, ev.ablation.base)} {_pts(d)}"

    out.append(
        _claim(
            "A.5",
            "the model trained on the random sample shows improvements over its base model.",
            "random-FineWeb2 CPT - base, medical average",
            random_improves,
        )
    )

    def random_three_of_eight():
        if ev.ablation is None:
            raise NotComputable("no random FineWeb2-de run beside the focus family")
        twin = _family(ev, ev.focus_run)
        pairs = [(ev.ablation.cpt, twin.cpt), (ev.ablation.merge, twin.merge)]
        parts = [(a, b, t, bench_diff(ev, a, b, [t])) for a, b in pairs for t in med]
        ahead = [f"{_name(ev, a)} {t} {_pts(d)}" for a, _, t, d in parts if d.mean > 0]
        found = [_verdict(d) for *_, d in parts]
        return k_of_n(found, 3), (
            f"{len(ahead)} of {len(parts)} ahead by direction, {found.count(HOLDS)} beyond noise: " + "; ".join(ahead)
        )

    out.append(
        _claim(
            "A.5",
            "the model trained on the random subset outperforms its domain-specific counterparts in three out of"
            " eight settings.",
            "random CPT - FineMed-de CPT and random merge - FineMed-de merge, per medical column (8 settings);"
            " exactly 3 beyond noise",
            random_three_of_eight,
        )
    )

    def random_outperformed_on_average():
        if ev.ablation is None:
            raise NotComputable("no random FineWeb2-de run beside the focus family")
        twin = _family(ev, ev.focus_run)
        parts = [
            (b, a, bench_diff(ev, b, a, med)) for a, b in ((ev.ablation.cpt, twin.cpt), (ev.ablation.merge, twin.merge))
        ]
        return combine([_verdict(d) for *_, d in parts]), "; ".join(
            f"{_name(ev, b)} - {_name(ev, a)} {_pts(d)}" for b, a, d in parts
        )

    out.append(
        _claim(
            "A.5",
            "On average however, it is clearly outperformed by the domain-specific model variants.",
            "FineMed-de CPT - random CPT and FineMed-de merge - random merge, medical average",
            random_outperformed_on_average,
        )
    )

    def general_outperform():
        parts = [(f, m, bench_diff(ev, m, f.base, gen)) for f in ev.families for m in (f.cpt, f.merge)]
        if not parts:
            raise NotComputable("no FineMed-de run")
        return combine([_verdict(d) for *_, d in parts]), "; ".join(
            f"{_name(ev, m)} - {_name(ev, f.base)} {_pts(d)}" for f, m, d in parts
        )

    out.append(
        _claim(
            "A.6",
            "As shown in Table 11, the medical models consistently outperform their base versions",
            "CPT - base and merge - base, general average, every family",
            general_outperform,
        )
    )
    return out


# ---------------------------------------------------------------- judge claims (abstract, 5.2, 5.3)


def _pairwise_source(ev: Evidence) -> dict:
    if ev.winrate is None:
        raise NotComputable(ev.absent.get("winrate", "no pairwise judgements"))
    bias = (ev.winrate.get("position_bias") or {}).get("share")
    if bias is not None and bias > POSITION_BIAS_LIMIT:
        raise NotComputable(
            f"the pairwise judge picked the first-presented response in {bias:.2f} of its decisive verdicts"
            f" (above {POSITION_BIAS_LIMIT:g})"
        )
    return ev.winrate["matrix"]


def _record(ev: Evidence, a: str, b: str) -> dict:
    rec = _pairwise_source(ev).get(a, {}).get(b)
    if rec is None or not rec.get("n"):
        raise NotComputable(f"{_name(ev, a)} vs {_name(ev, b)} not judged")
    return rec


def margin(rec: dict) -> Difference:
    """(wins - losses) / n of one pair with its multinomial standard error."""
    n = rec["n"]
    pw, pl = rec["wins"] / n, rec["losses"] / n
    return Difference(pw - pl, math.sqrt(max(pw + pl - (pw - pl) ** 2, 0.0) / n), n)


def rate(rec: dict) -> Difference:
    """A pair's win rate wins / n with its binomial standard error."""
    p = rec["wins"] / rec["n"]
    return Difference(p, math.sqrt(p * (1 - p) / rec["n"]), rec["n"])


def _margin_claim(ev: Evidence, pairs: list[tuple[str, str]]) -> tuple[str, str]:
    parts = [(a, b, margin(_record(ev, a, b))) for a, b in pairs]
    if not parts:
        raise NotComputable("no pair to judge")
    return combine([_verdict(d) for *_, d in parts]), "; ".join(
        f"{_name(ev, a)} vs {_name(ev, b)} (wins - losses)/n {d.mean:+.3f} ± {d.stderr:.3f}" for a, b, d in parts
    )


def claims_pairwise(ev: Evidence) -> list[Claim]:
    out = [
        _claim(
            "5.2",
            "Pairwise comparisons show that the merged checkpoints consistently and significantly outperform their"
            " instruction-tuned base counterparts.",
            "(wins - losses) / n of each smaller family's merge against its base",
            lambda: _margin_claim(ev, [(f.merge, f.base) for f in _small(ev)]),
        ),
        _claim(
            "5.2",
            "Among the models, the Qwen2.5 architecture demonstrates superior base performance over the Mistral"
            " architecture.",
            "(wins - losses) / n of the Qwen2.5 base against the Mistral-7B base",
            lambda: _margin_claim(ev, [(_family(ev, ev.focus_run).base, _family(ev, ev.mixing_run).base)]),
        ),
        _claim(
            "5.2",
            "The two [LOST: 24B] models overwhelmingly dominate all [LOST: 7B] models",
            "(wins - losses) / n of the 24B base and merge against every smaller base and merge",
            lambda: _margin_claim(
                ev,
                [
                    (big, small)
                    for big in (_family(ev, ev.large_run).base, _family(ev, ev.large_run).merge)
                    for f in _small(ev)
                    for small in (f.base, f.merge)
                ],
            ),
        ),
    ]

    def fold():
        q, large = _family(ev, ev.focus_run), _family(ev, ev.large_run)
        m, b = rate(_record(ev, q.merge, large.base)), rate(_record(ev, q.base, large.base))
        if b.mean == 0:
            raise NotComputable(f"{_name(ev, q.base)} won no verdict against {_name(ev, large.base)}: no fold")
        r = m.mean / b.mean
        se = r * math.hypot(m.stderr / m.mean if m.mean else 0.0, b.stderr / b.mean)
        if abs(r - FOLD) > SIGMA * se:
            verdict = CONTRADICTED
        else:
            verdict = HOLDS if r - 1 > SIGMA * se else WITHIN_NOISE
        return verdict, f"win rates {m.mean:.3f} vs {b.mean:.3f} (n {m.n}, {b.n}): {r:.2f} ± {se:.2f}-fold"

    out.append(
        _claim(
            "5.2, abstract",
            "the pairwise win-rate analysis of the Qwen2.5-based models demonstrates an approximately 3.5-fold"
            " increase in the win-rate against the much larger Mistral-Small-24B-Instruct through domain adaptation.",
            f"ratio of the Qwen2.5 merge's to its base's win rate against Mistral-Small-24B (binomial errors, delta"
            f" method): holds when {FOLD:g} lies within the noise band and the ratio exceeds 1 beyond it;"
            f" contradicted when {FOLD:g} lies outside",
            fold,
        )
    )
    out.append(
        _claim(
            "5.2",
            "the base Mistral-Small-24B-Instruct model outperforms its merged counterpart.",
            "(wins - losses) / n of the 24B base against its merge",
            lambda: _margin_claim(ev, [(_family(ev, ev.large_run).base, _family(ev, ev.large_run).merge)]),
        )
    )
    return out


def one_verdict_vector(row: dict) -> bool:
    """Every share 0 or 1: the judge gave all of the model's responses the same verdict vector, so
    the shares measure the judge, not the model."""
    return all(v in (0, 1) for v in row["shares"].values())


def _modes(ev: Evidence, model: str) -> dict:
    if ev.failure_modes is None:
        raise NotComputable(ev.absent.get("failure_modes", "no failure-mode judgements"))
    row = (ev.failure_modes.get("models") or {}).get(model)
    if row is None or not row.get("judged"):
        raise NotComputable(f"{_name(ev, model)}'s responses were not judged for failure modes")
    if one_verdict_vector(row):
        raise NotComputable(f"the failure-mode judge gave every response of {_name(ev, model)} one verdict vector")
    return row


def share_change(ev: Evidence, before: str, after: str, mode: str) -> Difference:
    """after's share of responses with `mode` minus before's, two independent proportions."""
    a, b = _modes(ev, after), _modes(ev, before)
    pa, pb, na, nb = a["shares"][mode], b["shares"][mode], a["judged"], b["judged"]
    return Difference(pa - pb, math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb), na + nb)


def same_verdict_everywhere(before: float, after: float) -> bool:
    """A mode the judge gives every response of both models (share 1 -> 1) or none (0 -> 0): the
    comparison has no variation to weigh, so it says nothing about a change."""
    return before == after and before in (0, 1)


def _mode_claim(ev: Evidence, rows: list[tuple[str, str, str, int]]) -> tuple[str, str]:
    """rows: (before, after, mode, sign): sign -1 claims a fall, +1 a rise. Parts without variation
    (same_verdict_everywhere) are left out and named; a claim left with no part is not computable."""
    parts, constant = [], []
    for before, after, mode, sign in rows:
        d = share_change(ev, before, after, mode)
        share = _modes(ev, before)["shares"][mode]
        if same_verdict_everywhere(share, _modes(ev, after)["shares"][mode]):
            constant.append(f"{_name(ev, after)} {mode} {share:.0f} -> {share:.0f}")
            continue
        parts.append((before, after, mode, d, Difference(sign * d.mean, d.stderr, d.n)))
    if not parts:
        raise NotComputable(
            "the failure-mode judge gives every response of both models the same verdict on each mode claimed ("
            + "; ".join(constant)
            + ")"
        )
    note = f"; left out (one verdict for every response of both models): {', '.join(constant)}" if constant else ""
    verdict = combine([_verdict(claimed) for *_, claimed in parts])
    if constant and verdict == HOLDS:
        verdict = WITHIN_NOISE  # a part left out cannot be shown to hold
    return verdict, "; ".join(
        f"{_name(ev, a)} {mode} {_modes(ev, b)['shares'][mode]:.2f} -> {_modes(ev, a)['shares'][mode]:.2f}"
        f" ({d.mean:+.2f} ± {d.stderr:.2f})"
        for b, a, mode, d, _ in parts
    ) + note


def claims_failure_modes(ev: Evidence) -> list[Claim]:
    def small_rows(modes, sign):
        return [(f.base, f.merge, m, sign) for f in _small(ev) for m in modes]

    out = [
        _claim(
            "5.3",
            "Across the Mistral-7B and Qwen2.5-7B families, a clear trend of mitigation is observed in failure modes"
            " such as hallucination, omission, overgeneralization, and repetition after the merging step.",
            "share of responses with each mode, base -> merge, falls in every smaller family",
            lambda: _mode_claim(ev, small_rows(("hallucination", "omission", "overgeneralization", "repetition"), -1)),
        ),
        _claim(
            "5.3",
            "Both overconfidence and contradiction errors are dramatically reduced.",
            "overconfidence and contradiction shares, base -> merge, fall in every smaller family",
            lambda: _mode_claim(ev, small_rows(("overconfidence", "contradiction"), -1)),
        ),
        _claim(
            "5.3, abstract",
            "The most extreme case is the language mixing failure mode in the DeFineMed-Mistral-7B-SLERP model,"
            " which exhibited [LOST] of the instances, a drastic increase from the [LOST] instances in the base"
            " Mistral-7B-Instruct-v0.3.",
            "language-mixing share, Mistral-7B base -> merge, rises",
            lambda: _mode_claim(
                ev, [(_family(ev, ev.mixing_run).base, _family(ev, ev.mixing_run).merge, "language_mixing", 1)]
            ),
        ),
    ]

    def no_mixing_qwen():
        q = _family(ev, ev.focus_run)
        d = share_change(ev, q.base, q.merge, "language_mixing")
        before = _modes(ev, q.base)["shares"]["language_mixing"]
        if same_verdict_everywhere(before, _modes(ev, q.merge)["shares"]["language_mixing"]):
            raise NotComputable(
                f"the failure-mode judge gives every response of both models the same language-mixing verdict"
                f" ({before:.0f} -> {before:.0f})"
            )
        verdict = CONTRADICTED if d.mean > SIGMA * d.stderr else HOLDS
        return verdict, f"language mixing {d.mean:+.2f} ± {d.stderr:.2f}"

    out.append(
        _claim(
            "5.3",
            "However, this trend is not observed in the Qwen2.5-7B models.",
            "language-mixing share, Qwen2.5 base -> merge: holds unless it rises beyond noise",
            no_mixing_qwen,
        )
    )
    out.append(
        _claim(
            "5.3, abstract",
            "This increase in verbosity is expected, as the models were continually pre-trained on a rich, verbose"
            " corpus of specialized text.",
            "verbosity share, base -> merge, rises in every smaller family",
            lambda: _mode_claim(ev, small_rows(("verbosity",), 1)),
        )
    )
    out.append(
        _claim(
            "5.3",
            "The occurrence of typos showed a contradictory pattern: a drastic decrease from [LOST] to [LOST] for the"
            " Qwen2.5-7B family following specialization and merging, but a drastic increase from [LOST] to [LOST]"
            " for the Mistral-7B family.",
            "typo share, base -> merge: falls for Qwen2.5, rises for Mistral-7B",
            lambda: _mode_claim(
                ev,
                [
                    (_family(ev, ev.focus_run).base, _family(ev, ev.focus_run).merge, "typo", -1),
                    (_family(ev, ev.mixing_run).base, _family(ev, ev.mixing_run).merge, "typo", 1),
                ],
            ),
        )
    )

    def large_stable():
        large = _family(ev, ev.large_run)
        modes = list(_modes(ev, large.base)["shares"])
        parts = [(m, share_change(ev, large.base, large.merge, m)) for m in modes]
        moved = [(m, d) for m, d in parts if _verdict(d) != WITHIN_NOISE]
        verdict = CONTRADICTED if moved else HOLDS
        return verdict, "changed beyond noise: " + (
            ", ".join(f"{m} {d.mean:+.2f} ± {d.stderr:.2f}" for m, d in moved) or "none"
        )

    out.append(
        _claim(
            "5.3",
            "The failure mode counts for the merged checkpoint show no significant changes from its base model"
            " counterpart, with all counts remaining low.",
            "every mode's share, 24B base -> merge: holds unless one changes beyond noise",
            large_stable,
        )
    )

    def instruction_following():
        fams = list(ev.families)
        if ev.failure_modes is None:
            raise NotComputable(ev.absent.get("failure_modes", "no failure-mode judgements"))
        judged = (ev.failure_modes.get("models") or {}).keys()
        if not any(f.cpt in judged for f in fams):
            raise NotComputable(
                "no measure: the workflow never generates from the CPT models (generation.models: the instruct bases"
                " and merges, as 5.2 and 5.3 judge), so instruction following lost by CPT and restored by merging is"
                " not measured"
            )
        return _mode_claim(ev, [(f.cpt, f.merge, "instruction_ignoring", -1) for f in fams if f.cpt in judged])

    out.append(
        _claim(
            "abstract, 4.3, 6, 7",
            "While model merging successfully restores instruction-following abilities",
            "instruction-ignoring share, CPT -> merge, falls (only where CPT models' responses were judged)",
            instruction_following,
        )
    )
    return out


# ---------------------------------------------------------------- training claims (A.3)


def _step_rate(points: list[float]) -> Difference:
    n = len(points)
    m = mean(points)
    se = math.sqrt(sum((x - m) ** 2 for x in points) / (n - 1) / n) if n > 1 else 0.0
    return Difference(m, se, n)


def claims_training(ev: Evidence) -> list[Claim]:
    def throughput():
        if not ev.large_run:
            raise NotComputable("paper.claims.large_run is not set")
        runs = [f.run for f in _small(ev) if f.run in ev.throughput]
        if not runs:
            raise NotComputable(ev.absent.get("throughput", "no training log of a smaller model"))
        rates = {r: _step_rate(ev.throughput[r]["step_tokens_per_s_per_device"]) for r in runs}
        numbers = ", ".join(f"{r} {d.mean:.0f} ± {d.stderr:.0f}" for r, d in rates.items())
        if {ev.throughput[r]["device"] for r in runs} == {"cpu"}:
            raise NotComputable(f"trained on CPU, not on A100s ({numbers} tokens/s per process)")
        parts = []
        for d in rates.values():
            off = abs(d.mean / THROUGHPUT - 1)
            band = SIGMA * d.stderr / THROUGHPUT
            parts.append(
                HOLDS
                if off + band <= THROUGHPUT_TOLERANCE
                else CONTRADICTED
                if off - band > THROUGHPUT_TOLERANCE
                else WITHIN_NOISE
            )
        return combine(parts), numbers

    def near_linear():
        if not ev.scaling:
            raise NotComputable(ev.absent.get("scaling", "no scaling measurement (paper.scaling)"))
        parts, numbers = [], []
        for run, points in ev.scaling.items():
            by_nodes = sorted(points, key=lambda p: p["nodes"])
            first = by_nodes[0]
            t1 = _step_rate([first["tokens_per_step"] / s for s in first["step_seconds"]])
            for p in by_nodes[1:]:
                tn = _step_rate([p["tokens_per_step"] / s for s in p["step_seconds"]])
                scale = p["nodes"] / first["nodes"]
                eff = tn.mean / (scale * t1.mean)
                se = eff * math.hypot(tn.stderr / tn.mean, t1.stderr / t1.mean)
                parts.append(_verdict(Difference(eff - NEAR_LINEAR, se, tn.n + t1.n)))
                numbers.append(f"{_name(ev, run)} {p['nodes']}/{first['nodes']} nodes: {eff:.2f} ± {se:.2f}")
        if not parts:
            raise NotComputable("one node count only")
        return combine(parts), "efficiency " + "; ".join(numbers)

    return [
        _claim(
            "A.3",
            "In both cases, we reached a throughput of approximately 1850 tokens per second per GPU for [LOST]"
            " parameter sized models.",
            f"mean tokens/s per device over the smaller models' optimizer steps within {100 * THROUGHPUT_TOLERANCE:g}%"
            f" of {THROUGHPUT:g} (NOT IN PAPER: the tolerance)",
            throughput,
        ),
        _claim(
            "A.3",
            "By avoiding node-level sharding, we achieved near-linear scaling, as illustrated in Figure 5.",
            f"Figure 5's numbers: throughput at n nodes / (n x throughput at the fewest) at least {NEAR_LINEAR:g}"
            " (NOT IN PAPER: the threshold), per-step errors",
            near_linear,
        ),
    ]


def evaluate_claims(ev: Evidence) -> list[Claim]:
    return [*claims_benchmarks(ev), *claims_pairwise(ev), *claims_failure_modes(ev), *claims_training(ev)]


def step_throughputs(training_log: list[dict], skip: int = 1) -> list[float]:
    """Tokens/s per device of each optimizer step, the first `skip` (warm-up) left out."""
    rows = training_log[skip:] or training_log
    return [r["tokens_per_s_per_device"] for r in rows]


# ---------------------------------------------------------------- the paper's reported tables


def reported_benchmarks(
    tables: dict[str, list[dict]], columns: dict[str, dict[str, str]], index: dict[str, str]
) -> Benchmarks:
    """Benchmarks from the paper's tables (paper/reported/<table>.csv rows, read by
    definemed.paper.reproduction.read_reported): `columns[table]` printed header -> task key, `index`
    printed display name -> this config's model key. Cells in fractions."""
    from definemed.paper.reproduction import parse_acc

    cells: dict[str, dict[str, tuple[float, float]]] = {}
    for table, rows in tables.items():
        for row in rows:
            key = index.get(row["display"])
            if key is None:
                continue
            for header, task in columns.get(table, {}).items():
                if header in row and row[header]:
                    acc, se = parse_acc(row[header])
                    cells.setdefault(key, {})[task] = (acc / 100, se / 100)
    return Benchmarks(cells=cells)


REPORTED_ABSENT = {
    "winrate": "the paper's win rates (Figure 2) are not in its text",
    "failure_modes": "the paper's failure-mode counts (Figure 3) are not in its text",
    "throughput": "the paper prints no per-step throughput (A.3's 1850 is the claim itself)",
    "scaling": "Figure 5's numbers are not in the paper's text",
}


# ---------------------------------------------------------------- rendering

MINIATURE_NOTE = " Miniature: tiny models on fixture data; a verdict shows that the check runs, not the paper's result."


def _counts(claims: list[Claim]) -> str:
    n = {v: sum(c.verdict.startswith(v) for c in claims) for v in VERDICTS}
    return (
        f"{len(claims)} claims: {n[HOLDS]} hold, {n[WITHIN_NOISE]} within noise, {n[CONTRADICTED]} contradicted,"
        f" {n[NOT_COMPUTABLE]} not computable."
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_claims(run: list[Claim], reported: list[Claim] | None, miniature: bool) -> str:
    out = [
        "## The paper's claims, checked as written",
        "",
        "Each claim is the paper's sentence (numbers its text lost marked [LOST]), its section, and how it is"
        " checked. Rules:",
        "",
        *(f"- {r}" for r in RULES),
        "",
        "Not listed, being no sentence of the paper: the share of the CPT gain a merge keeps (an inference) and"
        " the held-out perplexity shifts (a measure of this workflow, in the effects section below).",
        "",
        "### On this run's numbers",
        "",
        _counts(run) + (MINIATURE_NOTE if miniature else ""),
        "",
        "| # | Section | The paper's sentence | Checked as | Verdict | Numbers |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f'| C{i} | {c.section} | "{_cell(c.quote)}" | {_cell(c.checked)} | {_cell(c.verdict)} | {_cell(c.numbers)} |'
        for i, c in enumerate(run, 1)
    ]
    if reported is not None:
        out += [
            "",
            "### On the paper's own reported tables",
            "",
            "The same checks on the numbers the paper prints (paper/reported/: Tables 4, 9, 11), with the"
            " unpaired rule above (no per-item data). Where the paper's own numbers leave its sentence within"
            " noise or contradict it, this says so; the claims are not re-encoded to pass.",
            "",
            _counts(reported),
            "",
            "| # (as above) | Section | Verdict | Numbers (paper's cells, percentage points) |",
            "|---|---|---|---|",
        ]
        out += [f"| C{i} | {c.section} | {_cell(c.verdict)} | {_cell(c.numbers)} |" for i, c in enumerate(reported, 1)]
    return "\n".join(out) + "\n"
