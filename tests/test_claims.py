"""The paper's claims as checks over a run's numbers (definemed.claims): each verdict follows the
numbers, and a claim whose numbers are missing says so instead of guessing."""

import copy

import pytest

from definemed import claims as cl

MED, GEN = ["anatomy", "medqa_de"], ["mmlu"]
FAMILIES = [cl.Family(r, f"{r}-base", r, f"{r}-slerp") for r in ("mistral", "qwen", "small")]


def record(rate, low=None):
    low = rate - 0.05 if low is None else low
    return {"win_rate": rate, "ci_low": low, "ci_high": rate + 0.05}


def shares(**values):
    modes = dict.fromkeys(("overconfidence", "contradiction", "verbosity", "language_mixing", "typo"), 0.2)
    return {"judged": 500, "shares": {**modes, **values}}


def paper_like():
    """Numbers shaped as the paper reports them: every claim holds."""
    acc = {}
    for i, f in enumerate(FAMILIES):
        lift = 0.1 * i
        acc[f.base] = {"anatomy": 0.40 + lift, "medqa_de": 0.40 + lift, "mmlu": 0.50 + lift}
        acc[f.cpt] = {"anatomy": 0.50 + lift, "medqa_de": 0.45 + lift, "mmlu": 0.52 + lift}
        acc[f.merge] = {"anatomy": 0.50 + lift, "medqa_de": 0.50 + lift, "mmlu": 0.53 + lift}
    acc["random"] = {"anatomy": 0.55, "medqa_de": 0.51}
    win = {f.merge: {f.base: record(0.7)} for f in FAMILIES[:2]}
    for big in ("small-base", "small-slerp"):
        win[big] = {m: record(0.9) for f in FAMILIES[:2] for m in (f.base, f.merge)}
    win["small-base"]["small-slerp"] = record(0.6)
    win["qwen-slerp"]["small-base"] = record(0.3)
    win["qwen-base"] = {"small-base": record(0.1)}
    models = {f.base: shares() for f in FAMILIES}
    models |= {f.merge: shares(overconfidence=0.1, contradiction=0.1, verbosity=0.4) for f in FAMILIES[:2]}
    models["mistral-slerp"]["shares"]["language_mixing"] = 0.5
    models["small-slerp"] = shares()
    return cl.Evidence(
        families=FAMILIES,
        medical_tasks=MED,
        general_tasks=GEN,
        accuracy=acc,
        ablation=cl.Family("random", "qwen-base", "random", "random-slerp"),
        perplexity={
            "qwen": {"base": {"perplexity": 9.0}, "cpt": {"perplexity": 5.0}},
            "random": {"base": {"perplexity": 9.0}, "cpt": {"perplexity": 6.0}},
        },  # fmt: skip
        winrate={"matrix": win},
        failure_modes={"models": models},
        throughput={
            "mistral": {"device": "NVIDIA A100-SXM4-40GB", "tokens_per_s_per_device": 1830.0},
            "qwen": {"device": "NVIDIA A100-SXM4-40GB", "tokens_per_s_per_device": 1900.0},
        },  # fmt: skip
        focus_run="qwen",
        large_run="small",
        mixing_run="mistral",
    )


def verdicts(ev):
    return {c.text: c.verdict for c in cl.evaluate_claims(ev)}


def test_every_claim_holds_on_numbers_shaped_as_the_papers():
    result = verdicts(paper_like())
    assert len(result) == 18
    assert set(result.values()) == {cl.HOLDS}, result


@pytest.mark.parametrize(
    "change, claim",
    [
        (lambda ev: ev.accuracy["qwen"].update(anatomy=0.30, medqa_de=0.30), "improves each base model's medical"),
        (lambda ev: ev.accuracy["random"].update(anatomy=0.70, medqa_de=0.70), "beats the random FineWeb2-de"),
        (lambda ev: ev.perplexity["random"]["cpt"].update(perplexity=4.0), "lower perplexity"),
        (lambda ev: ev.accuracy["mistral-slerp"].update(mmlu=0.40), "general benchmarks"),
        (lambda ev: ev.winrate["matrix"]["qwen-slerp"].update({"qwen-base": record(0.6, 0.48)}), "wins significantly"),
        (lambda ev: ev.winrate["matrix"]["qwen-slerp"].update({"small-base": record(0.05)}), "wins more often"),
        (lambda ev: ev.failure_modes["models"]["small-slerp"]["shares"].update(typo=0.5), "do not change"),
        (lambda ev: ev.throughput["qwen"].update(tokens_per_s_per_device=1200.0), "tokens/s per GPU"),
    ],
)
def test_a_claim_fails_when_its_numbers_say_otherwise(change, claim):
    ev = paper_like()
    change(ev)
    failed = [text for text, verdict in verdicts(ev).items() if verdict == cl.FAILS]
    assert any(claim in text for text in failed), failed


def test_missing_numbers_make_a_claim_not_computable():
    ev = copy.deepcopy(paper_like())
    ev.winrate, ev.failure_modes = None, None
    ev.throughput = {r: {**v, "device": "cpu"} for r, v in ev.throughput.items()}
    result = {c.text: c for c in cl.evaluate_claims(ev)}
    open_ = [c for c in result.values() if c.verdict.startswith(cl.NOT_COMPUTABLE)]
    assert len(open_) == 9 and all(c.section in ("5.2", "5.3", "A.3") for c in open_)
    text = cl.render_claims(list(result.values()), miniature=True)
    assert "18 claims: 9 hold, 0 do not hold, 9 not computable." in text


def test_miniature_reproduction_report_lists_every_claim_with_its_verdict(miniature):
    text = (miniature / "paper" / "reproduction.md").read_text()
    section = text.split("## The paper's claims on this run's numbers", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Section")]
    assert len(rows) == 18
    verdicts = [row.split(" | ")[2] for row in rows]
    assert all(v.split(":")[0] in (cl.HOLDS, cl.FAILS, cl.NOT_COMPUTABLE) for v in verdicts)
    # the miniature computes the A.5 direction on held-out perplexity; it cannot measure A100 throughput
    assert any("lower perplexity" in row and "not computable" not in row for row in rows)
    assert any("tokens/s per GPU" in row and "not computable: trained on CPU" in row for row in rows)
