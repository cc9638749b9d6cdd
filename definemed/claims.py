"""The paper's qualitative claims (abstract, sections 5, A.3, A.5, A.6), each a check over the run's
own numbers: holds, does not hold, or not computable (with why), and the numbers it used.

The run's numbers come as one dict (`Evidence`): benchmark accuracies per model and task, the
held-out perplexities of the CPT runs, the pairwise win-rate matrix, the failure-mode shares and
the CPT throughput. Roles (which run is the paper's Qwen2.5 family, which its 24B model) come from
config (paper.claims), the model families from cpt.runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import mean

HOLDS, FAILS, NOT_COMPUTABLE = "holds", "does not hold", "not computable"


@dataclass
class Family:
    """An instruct base, its FineMed-de CPT model and their SLERP merge (model keys)."""

    run: str
    base: str
    cpt: str
    merge: str


@dataclass
class Evidence:
    families: list[Family]
    medical_tasks: list[str]
    general_tasks: list[str]
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> task -> accuracy
    medical_baselines: list[str] = field(default_factory=list)
    ablation: Family | None = None  # the random-FineWeb2 run on the focus family's base
    perplexity: dict[str, dict] = field(default_factory=dict)  # run -> perplexity.json
    winrate: dict | None = None  # results/judges/pairwise/winrate.json
    failure_modes: dict | None = None  # results/judges/failure_modes/counts.json
    throughput: dict[str, dict] = field(default_factory=dict)  # run -> {device, tokens_per_s_per_device}
    focus_run: str | None = None  # 5.2: the Qwen2.5-7B family
    large_run: str | None = None  # 5.2: the Mistral-Small-24B family
    mixing_run: str | None = None  # 5.3: the Mistral-7B family (language mixing)
    display: dict[str, str] = field(default_factory=dict)


@dataclass
class Claim:
    section: str
    text: str
    verdict: str
    numbers: str


def _avg(ev: Evidence, model: str, tasks: list[str]) -> float | None:
    cells = ev.accuracy.get(model, {})
    if not tasks or any(t not in cells for t in tasks):
        return None
    return mean(cells[t] for t in tasks)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def _name(ev: Evidence, key: str) -> str:
    return ev.display.get(key, key)


def _family(ev: Evidence, run: str | None) -> Family | None:
    return next((f for f in ev.families if f.run == run), None)


def _verdict(ok: bool) -> str:
    return HOLDS if ok else FAILS


def _win(ev: Evidence, a: str, b: str) -> dict | None:
    """a's record against b, or None if the pair was not judged."""
    return ((ev.winrate or {}).get("matrix") or {}).get(a, {}).get(b)


def _shares(ev: Evidence, model: str) -> dict | None:
    return ((ev.failure_modes or {}).get("models") or {}).get(model)


def _claim_cpt_improves_medical(ev: Evidence) -> Claim:
    text = "Continual pre-training on FineMed-de improves each base model's medical average (5.1, abstract)"
    rows = [(f, _avg(ev, f.base, ev.medical_tasks), _avg(ev, f.cpt, ev.medical_tasks)) for f in ev.families]
    if not rows or any(b is None or c is None for _, b, c in rows):
        return Claim("5.1", text, f"{NOT_COMPUTABLE}: medical results missing", "")
    numbers = "; ".join(f"{_name(ev, f.cpt)} {_pct(c)} vs {_name(ev, f.base)} {_pct(b)}" for f, b, c in rows)
    return Claim("5.1", text, _verdict(all(c > b for _, b, c in rows)), numbers)


def _claim_merge_on_average(ev: Evidence) -> list[Claim]:
    rows = [
        (f, _avg(ev, f.base, ev.medical_tasks), _avg(ev, f.cpt, ev.medical_tasks), _avg(ev, f.merge, ev.medical_tasks))
        for f in ev.families
    ]
    text = "On average, model merging slightly improved performance across the medical benchmarks (5.1)"
    keep = "The merges keep most (at least half) of each CPT model's medical gain over its base (5.1)"
    medqa = "Merging improved MedQA-de for every family (5.1)"
    if not rows or any(v is None for r in rows for v in r[1:]):
        missing = f"{NOT_COMPUTABLE}: medical results missing"
        return [Claim("5.1", text, missing, ""), Claim("5.1", keep, missing, ""), Claim("5.1", medqa, missing, "")]
    diffs = [m - c for _, _, c, m in rows]
    claims = [
        Claim(
            "5.1",
            text,
            _verdict(mean(diffs) > 0),
            "merge - CPT average per family: " + ", ".join(f"{100 * d:+.2f}" for d in diffs),
        )
    ]
    kept = [(f, (m - b) / (c - b) if c != b else math.nan) for f, b, c, m in rows]
    gains = [c - b for _, b, c, _ in rows]
    claims.append(
        Claim(
            "5.1",
            keep,
            f"{NOT_COMPUTABLE}: a CPT model did not gain"
            if min(gains) <= 0
            else _verdict(all(k >= 0.5 for _, k in kept)),
            "share of the CPT gain kept: " + ", ".join(f"{_name(ev, f.merge)} {k:.2f}" for f, k in kept),
        )
    )
    if "medqa_de" not in ev.medical_tasks:
        claims.append(Claim("5.1", medqa, f"{NOT_COMPUTABLE}: no medqa_de task", ""))
    else:
        pairs = [(f, ev.accuracy[f.cpt]["medqa_de"], ev.accuracy[f.merge]["medqa_de"]) for f in ev.families]
        claims.append(
            Claim(
                "5.1",
                medqa,
                _verdict(all(m > c for _, c, m in pairs)),
                "; ".join(f"{_name(ev, f.merge)} {_pct(m)} vs {_name(ev, f.cpt)} {_pct(c)}" for f, c, m in pairs),
            )
        )
    return claims


def _claim_large_merge_strongest(ev: Evidence) -> Claim:
    text = "The 24B merge (DeFineMed-Mistral-Small-24B-SLERP) is the strongest model on the medical average (5.1)"
    large = _family(ev, ev.large_run)
    if large is None:
        return Claim("5.1", text, f"{NOT_COMPUTABLE}: paper.claims.large_run is not a FineMed run", "")
    models = [m for f in ev.families for m in (f.base, f.cpt, f.merge)] + ev.medical_baselines
    avgs = {m: _avg(ev, m, ev.medical_tasks) for m in models}
    if any(v is None for v in avgs.values()):
        return Claim("5.1", text, f"{NOT_COMPUTABLE}: medical results missing", "")
    best = max(avgs, key=avgs.get)
    return Claim("5.1", text, _verdict(best == large.merge), f"best: {_name(ev, best)} {_pct(avgs[best])}")


def _claims_ablation(ev: Evidence) -> list[Claim]:
    beats = "FineMed-de CPT beats the random FineWeb2-de CPT on the medical average (A.5)"
    improves = "The random FineWeb2-de CPT improves on its base model (A.5)"
    ppl = (
        "On held-out FineMed-de text, FineMed-de CPT reaches lower perplexity than random FineWeb2-de CPT"
        " (A.5's direction)"
    )
    ab, twin = ev.ablation, _family(ev, ev.focus_run)
    if ab is None or twin is None:
        reason = f"{NOT_COMPUTABLE}: no ablation run beside a FineMed run on the same base"
        return [Claim("A.5", c, reason, "") for c in (beats, improves, ppl)]
    base, fm, rnd = (_avg(ev, m, ev.medical_tasks) for m in (twin.base, twin.cpt, ab.cpt))
    claims = []
    if None in (base, fm, rnd):
        claims += [Claim("A.5", c, f"{NOT_COMPUTABLE}: medical results missing", "") for c in (beats, improves)]
    else:
        claims.append(Claim("A.5", beats, _verdict(fm > rnd), f"FineMed-de {_pct(fm)} vs FineWeb2-de {_pct(rnd)}"))
        claims.append(Claim("A.5", improves, _verdict(rnd > base), f"FineWeb2-de {_pct(rnd)} vs base {_pct(base)}"))
    p_fm, p_rnd = ev.perplexity.get(twin.run), ev.perplexity.get(ab.run)
    if not p_fm or not p_rnd:
        claims.append(Claim("A.5", ppl, f"{NOT_COMPUTABLE}: held-out perplexity missing", ""))
    else:
        a, b, base_ppl = p_fm["cpt"]["perplexity"], p_rnd["cpt"]["perplexity"], p_fm["base"]["perplexity"]
        numbers = f"FineMed-de CPT {a:.4g}, FineWeb2-de CPT {b:.4g}, base {base_ppl:.4g}"
        claims.append(Claim("A.5", ppl, _verdict(a < b), numbers))
    return claims


def _claim_general(ev: Evidence) -> Claim:
    text = "The medical models (CPT and merge) outperform their base versions on the general benchmarks (A.6)"
    rows = [(f, *(_avg(ev, m, ev.general_tasks) for m in (f.base, f.cpt, f.merge))) for f in ev.families]
    if not rows or any(v is None for r in rows for v in r[1:]):
        return Claim("A.6", text, f"{NOT_COMPUTABLE}: general results missing", "")
    numbers = "; ".join(f"{f.run}: base {_pct(b)}, CPT {_pct(c)}, merge {_pct(m)}" for f, b, c, m in rows)
    return Claim("A.6", text, _verdict(all(c > b and m > b for _, b, c, m in rows)), numbers)


def _claims_winrate(ev: Evidence) -> list[Claim]:
    small = [f for f in ev.families if f.run != ev.large_run]
    large, focus = _family(ev, ev.large_run), _family(ev, ev.focus_run)
    merges = "Each 7B merge wins significantly against its instruct base (5.2; 95% interval above 50%)"
    fold = "The Qwen2.5-7B merge wins more often against Mistral-Small-24B-Instruct than its base does (5.2, abstract)"
    large_base = "Mistral-Small-24B-Instruct beats its own merge (5.2)"
    dominate = "The two 24B models win against every 7B model (5.2)"
    if ev.winrate is None:
        return [
            Claim("5.2", c, f"{NOT_COMPUTABLE}: no pairwise judgements", "")
            for c in (merges, fold, large_base, dominate)
        ]
    claims = []
    recs = [(f, _win(ev, f.merge, f.base)) for f in small]
    if not recs or any(r is None for _, r in recs):
        claims.append(Claim("5.2", merges, f"{NOT_COMPUTABLE}: a merge/base pair was not judged", ""))
    else:
        numbers = "; ".join(
            f"{_name(ev, f.merge)} {r['win_rate']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]" for f, r in recs
        )
        claims.append(Claim("5.2", merges, _verdict(all(r["ci_low"] > 0.5 for _, r in recs)), numbers))
    if large is None or focus is None:
        claims += [
            Claim("5.2", c, f"{NOT_COMPUTABLE}: paper.claims roles not set", "") for c in (fold, large_base, dominate)
        ]
        return claims
    m, b = _win(ev, focus.merge, large.base), _win(ev, focus.base, large.base)
    if m is None or b is None:
        claims.append(Claim("5.2", fold, f"{NOT_COMPUTABLE}: pair not judged", ""))
    else:
        ratio = m["win_rate"] / b["win_rate"] if b["win_rate"] else math.inf
        numbers = f"merge {m['win_rate']:.3f} vs base {b['win_rate']:.3f} ({ratio:.2f}-fold)"
        claims.append(Claim("5.2", fold, _verdict(m["win_rate"] > b["win_rate"]), numbers))
    r = _win(ev, large.base, large.merge)
    if r is None:
        claims.append(Claim("5.2", large_base, f"{NOT_COMPUTABLE}: pair not judged", ""))
    else:
        claims.append(Claim("5.2", large_base, _verdict(r["win_rate"] > 0.5), f"win rate {r['win_rate']:.3f}"))
    recs = [(a, o, _win(ev, a, o)) for a in (large.base, large.merge) for f in small for o in (f.base, f.merge)]
    if any(r is None for *_, r in recs):
        claims.append(Claim("5.2", dominate, f"{NOT_COMPUTABLE}: a pair was not judged", ""))
    else:
        worst = min(recs, key=lambda x: x[2]["win_rate"])
        numbers = f"lowest: {_name(ev, worst[0])} vs {_name(ev, worst[1])} {worst[2]['win_rate']:.3f}"
        claims.append(Claim("5.2", dominate, _verdict(all(r["win_rate"] > 0.5 for *_, r in recs)), numbers))
    return claims


def _claims_failure_modes(ev: Evidence) -> list[Claim]:
    small = [f for f in ev.families if f.run != ev.large_run]
    calib = "Merging reduces overconfidence and contradiction in the 7B families (5.3)"
    verbose = "Specialization makes the 7B models more verbose (5.3)"
    mixing = "Language mixing rises from Mistral-7B-Instruct to its merge (5.3, abstract)"
    stable = "The 24B family's failure modes do not change significantly with merging (5.3; within 2 standard errors)"
    if ev.failure_modes is None:
        return [
            Claim("5.3", c, f"{NOT_COMPUTABLE}: no failure-mode judgements", "")
            for c in (calib, verbose, mixing, stable)
        ]
    claims = []

    def pairs(fams):
        return [(f, _shares(ev, f.base), _shares(ev, f.merge)) for f in fams]

    rows = pairs(small)
    if not rows or any(b is None or m is None for _, b, m in rows):
        claims += [Claim("5.3", c, f"{NOT_COMPUTABLE}: a 7B model was not judged", "") for c in (calib, verbose)]
    else:
        modes = ("overconfidence", "contradiction")
        ok = all(m["shares"][k] < b["shares"][k] for _, b, m in rows for k in modes)
        numbers = "; ".join(
            f"{f.run}: " + ", ".join(f"{k} {b['shares'][k]:.2f}->{m['shares'][k]:.2f}" for k in modes)
            for f, b, m in rows
        )
        claims.append(Claim("5.3", calib, _verdict(ok), numbers))
        ok = all(m["shares"]["verbosity"] > b["shares"]["verbosity"] for _, b, m in rows)
        numbers = "; ".join(
            f"{f.run}: {b['shares']['verbosity']:.2f}->{m['shares']['verbosity']:.2f}" for f, b, m in rows
        )
        claims.append(Claim("5.3", verbose, _verdict(ok), numbers))
    fam = _family(ev, ev.mixing_run)
    row = pairs([fam])[0] if fam else None
    if row is None or row[1] is None or row[2] is None:
        claims.append(Claim("5.3", mixing, f"{NOT_COMPUTABLE}: paper.claims.mixing_run not judged", ""))
    else:
        b, m = row[1]["shares"]["language_mixing"], row[2]["shares"]["language_mixing"]
        claims.append(Claim("5.3", mixing, _verdict(m > b), f"{b:.2f} -> {m:.2f}"))
    fam = _family(ev, ev.large_run)
    row = pairs([fam])[0] if fam else None
    if row is None or row[1] is None or row[2] is None:
        claims.append(Claim("5.3", stable, f"{NOT_COMPUTABLE}: paper.claims.large_run not judged", ""))
    else:
        b, m = row[1], row[2]
        moved = []
        for k in b["shares"]:
            p1, p2, n1, n2 = b["shares"][k], m["shares"][k], b["judged"], m["judged"]
            se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2) if n1 and n2 else 0.0
            if abs(p2 - p1) > 2 * se and p1 != p2:
                moved.append(f"{k} {p1:.2f}->{p2:.2f}")
        claims.append(Claim("5.3", stable, _verdict(not moved), "changed: " + (", ".join(moved) or "none")))
    return claims


def _claim_throughput(ev: Evidence, target: float = 1850.0, tolerance: float = 0.1) -> Claim:
    text = f"About {target:g} tokens/s per GPU for the 7B models under HSDP (A.3; within {100 * tolerance:g}%)"
    runs = [f.run for f in ev.families if f.run != ev.large_run and f.run in ev.throughput]
    if not runs:
        return Claim("A.3", text, f"{NOT_COMPUTABLE}: no 7B training log", "")
    devices = {ev.throughput[r]["device"] for r in runs}
    values = {r: ev.throughput[r]["tokens_per_s_per_device"] for r in runs}
    numbers = ", ".join(f"{r} {v:.0f}" for r, v in values.items())
    if devices == {"cpu"}:
        return Claim("A.3", text, f"{NOT_COMPUTABLE}: trained on CPU, not on A100s", numbers)
    ok = all(abs(v / target - 1) <= tolerance for v in values.values())
    return Claim("A.3", text, _verdict(ok), numbers)


def evaluate_claims(ev: Evidence) -> list[Claim]:
    return [
        _claim_cpt_improves_medical(ev),
        *_claim_merge_on_average(ev),
        _claim_large_merge_strongest(ev),
        *_claims_ablation(ev),
        _claim_general(ev),
        *_claims_winrate(ev),
        *_claims_failure_modes(ev),
        _claim_throughput(ev),
    ]


def mean_throughput(training_log: list[dict], skip: int = 1) -> float:
    """Mean tokens/s per device over the optimizer steps, the first `skip` (warm-up) left out."""
    rows = training_log[skip:] or training_log
    return mean(r["tokens_per_s_per_device"] for r in rows)


MINIATURE_NOTE = (
    " Miniature: tiny random-init models on fixture data; a verdict shows that the check runs, not the paper's result."
)


def render_claims(claims: list[Claim], miniature: bool) -> str:
    counts = {v: sum(c.verdict.startswith(v) for c in claims) for v in (HOLDS, FAILS, NOT_COMPUTABLE)}
    out = [
        "## The paper's claims on this run's numbers",
        "",
        f"{len(claims)} claims: {counts[HOLDS]} hold, {counts[FAILS]} do not hold,"
        f" {counts[NOT_COMPUTABLE]} not computable." + (MINIATURE_NOTE if miniature else ""),
        "",
        "| Section | Claim | Verdict | Numbers |",
        "|---|---|---|---|",
    ]
    out += [f"| {c.section} | {c.text} | {c.verdict} | {c.numbers} |" for c in claims]
    return "\n".join(out) + "\n"
