"""The paper's claims checked as written (definemed.paper.claims): each verdict weighs the effect against
its noise, a degenerate source makes a claim not computable, and the paper's own reported tables
give the verdicts their numbers imply."""

import copy

import pytest
from conftest import REPO

from definemed.config import display_name, load
from definemed.paper import claims as cl
from definemed.paper import reproduction as rp

MED, GEN = ["anatomy", "clinical_knowledge", "college_medicine", "medqa_de"], ["mmlu"]
FAMILIES = [cl.Family(r, f"{r}-base", r, f"{r}-slerp") for r in ("mistral", "qwen", "small")]
N = 200  # items per column


def items(right: int, n: int = N, offset: int = 0) -> list[float]:
    """n items, `right` of them correct, starting at item `offset` (wrapping): two rows with
    overlapping right answers differ on few items (small paired noise), disjoint ones on many."""
    return [1.0 if (i - offset) % n < right else 0.0 for i in range(n)]


def record(wins, losses, ties=0):
    n = wins + losses + ties
    return {"wins": wins, "losses": losses, "ties": ties, "n": n, "win_rate": wins / n}


MODES = ("hallucination", "omission", "overgeneralization", "repetition", "overconfidence", "contradiction",
         "verbosity", "language_mixing", "typo", "instruction_ignoring")  # fmt: skip


def judged(**shares):
    return {"judged": 400, "shares": {**dict.fromkeys(MODES, 0.2), **shares}}


def paper_like():
    """Numbers shaped as the paper's sentences say, each effect far beyond its noise."""
    # right answers of 200 per column: anatomy, clinical knowledge, college medicine, MedQA-de, MMLU
    right = {
        "bio": (60, 60, 60, 80, 0),  # the weakest base beats it on three of four columns (not MedQA-de)
        "mistral-base": (80, 80, 80, 80, 80),
        "mistral": (120, 120, 120, 120, 100),  # the strongest relative gain: +50%
        "mistral-slerp": (125, 125, 125, 140, 105),
        "qwen-base": (100, 100, 100, 100, 100),
        "qwen": (130, 130, 130, 80, 120),
        "qwen-slerp": (140, 140, 140, 100, 125),  # comparable to the 24B base but on MedQA-de
        "small-base": (140, 140, 140, 140, 140),
        "small": (150, 150, 150, 150, 160),  # the smallest gain
        "small-slerp": (175, 175, 175, 175, 165),
        "random": (100, 100, 100, 120, 0),  # ahead of its FineMed-de twin on MedQA-de only
        "random-slerp": (90, 90, 170, 130, 0),  # ... and on College Medicine and MedQA-de
    }
    bench = cl.Benchmarks()
    for model, counts in right.items():
        bench.items[model] = {t: items(k) for t, k in zip(MED + GEN, counts)}
    win = {f.merge: {f.base: record(70, 20, 10)} for f in FAMILIES[:2]}
    win["qwen-base"] = {"mistral-base": record(60, 30, 10), "small-base": record(10, 80, 10)}
    win["qwen-slerp"]["small-base"] = record(35, 55, 10)
    for big in ("small-base", "small-slerp"):
        win.setdefault(big, {}).update({m: record(85, 10, 5) for f in FAMILIES[:2] for m in (f.base, f.merge)})
    win["small-base"]["small-slerp"] = record(60, 30, 10)
    failure = {f.base: judged() for f in FAMILIES}
    falls = dict.fromkeys(("hallucination", "omission", "overgeneralization", "repetition", "overconfidence",
                           "contradiction"), 0.05)  # fmt: skip
    failure["mistral-slerp"] = judged(**falls, verbosity=0.5, language_mixing=0.6, typo=0.5)
    failure["qwen-slerp"] = judged(**falls, verbosity=0.5, typo=0.05)
    failure["small-slerp"] = judged()
    return cl.Evidence(
        families=FAMILIES,
        medical_tasks=MED,
        general_tasks=GEN,
        benchmarks=bench,
        medical_baselines=["bio"],
        ablation=cl.Family("random", "qwen-base", "random", "random-slerp"),
        winrate={"matrix": win, "position_bias": {"share": 0.52}},
        failure_modes={"models": failure},
        throughput={
            "mistral": {"device": "NVIDIA A100-SXM4-40GB", "step_tokens_per_s_per_device": [1840.0, 1860.0, 1850.0]},
            "qwen": {"device": "NVIDIA A100-SXM4-40GB", "step_tokens_per_s_per_device": [1845.0, 1855.0, 1850.0]},
        },  # fmt: skip
        scaling={
            "qwen": [
                {"run": "qwen", "nodes": 1, "tokens_per_step": 1000, "step_seconds": [1.0, 1.01, 0.99]},
                {"run": "qwen", "nodes": 2, "tokens_per_step": 2000, "step_seconds": [1.05, 1.04, 1.06]},
            ]
        },
        focus_run="qwen",
        large_run="small",
        mixing_run="mistral",
    )


def verdicts(ev):
    return {c.quote: c.verdict for c in cl.evaluate_claims(ev)}


def find(result, fragment):
    [(quote, verdict)] = [(q, v) for q, v in result.items() if fragment in q]
    return verdict


def test_every_claim_quotes_the_paper(tmp_path):
    paper = REPO.parent / "shared" / "paper" / "paper-text.txt"
    if not paper.exists():
        pytest.skip(f"{paper} absent")
    text = " ".join(paper.read_text().split())
    for claim in cl.evaluate_claims(paper_like()):
        # the lost numbers are gaps in the text; the arXiv abstract's 3.5 is the one restored
        pieces = claim.quote.replace("approximately 3.5-fold", "approximately -fold").split(" [LOST")
        for piece in pieces:
            piece = piece.split("] ", 1)[-1].rstrip(".")
            assert piece.strip(" ,") in text, (claim.section, piece)
        assert claim.section and claim.checked


def test_claims_on_numbers_shaped_as_the_papers_hold():
    result = verdicts(paper_like())
    # the instruction-following claim has no measure (no CPT model's responses judged)
    assert find(result, "restores instruction-following").startswith(cl.NOT_COMPUTABLE + ": no measure")
    others = {q: v for q, v in result.items() if "restores instruction-following" not in q}
    assert set(others.values()) == {cl.HOLDS}, {q: v for q, v in others.items() if v != cl.HOLDS}
    assert len(result) == 28


def test_an_effect_within_its_noise_is_not_a_holding_claim(monkeypatch):
    """The noise rule: the same 5-point CPT gain holds when the rows disagree on few items and is
    within noise when they disagree on many; with the rule removed (sigma 0) it would hold."""
    ev = paper_like()
    for f in FAMILIES:  # a 5-point gain in every family, on items that overlap fully
        ev.benchmarks.items[f.cpt] = {t: items(ev.benchmarks.items[f.base][t].count(1.0) + 10) for t in MED + GEN}
    assert find(verdicts(ev), "consistently improves") == cl.HOLDS
    for f in FAMILIES:  # the same gain, the right answers shifted: most items change
        n = ev.benchmarks.items[f.base]["anatomy"].count(1.0)
        ev.benchmarks.items[f.cpt] = {t: items(n + 10, offset=n) for t in MED + GEN}
    assert find(verdicts(ev), "consistently improves") == cl.WITHIN_NOISE
    monkeypatch.setattr(cl, "SIGMA", 0.0)
    assert find(verdicts(ev), "consistently improves") == cl.HOLDS


def test_the_opposite_effect_beyond_noise_contradicts():
    ev = paper_like()
    ev.benchmarks.items["small"] = {t: items(100) for t in MED + GEN}  # the 24B loses 40 of 200 items
    result = verdicts(ev)
    assert find(result, "consistently improves") == cl.CONTRADICTED
    assert find(result, "consistently outperform their base versions") == cl.CONTRADICTED


def test_a_constant_answer_makes_a_benchmark_claim_not_computable():
    ev = paper_like()
    ev.benchmarks.constant = {"qwen-base": {"anatomy": 0}}
    verdict = find(verdicts(ev), "Qwen2.5-7B-Instruct outperforms")
    assert verdict == f"{cl.NOT_COMPUTABLE}: qwen-base answers option A for every item of anatomy"
    ev.benchmarks.constant = {}  # the rule's input removed: the claim is judged on the numbers
    assert find(verdicts(ev), "Qwen2.5-7B-Instruct outperforms") == cl.HOLDS


def test_a_position_biased_judge_makes_the_pairwise_claims_not_computable(monkeypatch):
    ev = paper_like()
    ev.winrate["position_bias"] = {"share": 0.97}
    pairwise = [c for c in cl.evaluate_claims(ev) if c.section.startswith("5.2")]
    assert len(pairwise) == 5
    assert all("picked the first-presented response in 0.97" in c.verdict for c in pairwise)
    monkeypatch.setattr(cl, "POSITION_BIAS_LIMIT", 1.0)  # the rule removed
    assert {c.verdict for c in cl.evaluate_claims(ev) if c.section.startswith("5.2")} == {cl.HOLDS}


def test_one_verdict_vector_for_every_response_makes_a_failure_mode_claim_not_computable(monkeypatch):
    """The 24B stability "held" in the miniature because every share was 0 or 1: one verdict
    vector for all responses, which measures the judge, not the model."""
    ev = paper_like()
    one_vector = {**dict.fromkeys(MODES, 0.0), "verbosity": 1.0}
    ev.failure_modes["models"]["small-base"] = judged(**one_vector)
    ev.failure_modes["models"]["small-slerp"] = judged(**one_vector)
    verdict = find(verdicts(ev), "no significant changes")
    assert verdict.startswith(f"{cl.NOT_COMPUTABLE}: the failure-mode judge gave every response")
    monkeypatch.setattr(cl, "one_verdict_vector", lambda row: False)  # the rule removed
    assert find(verdicts(ev), "no significant changes") == cl.HOLDS


def test_a_mode_flagged_for_every_response_of_both_models_weighs_nothing(monkeypatch):
    """A rubric that flags hallucination in every response before and after merging (share 1 -> 1)
    has no variation to weigh: the part is left out, and a claim with no other part is not computable."""
    ev = paper_like()
    for f in FAMILIES[:2]:
        for m in (f.base, f.merge):
            ev.failure_modes["models"][m]["shares"].update(overconfidence=1.0, contradiction=1.0)
    verdict = find(verdicts(ev), "overconfidence and contradiction")
    assert verdict.startswith(f"{cl.NOT_COMPUTABLE}: the failure-mode judge gives every response of both models")
    monkeypatch.setattr(cl, "same_verdict_everywhere", lambda before, after: False)  # the rule removed
    assert find(verdicts(ev), "overconfidence and contradiction") == cl.WITHIN_NOISE  # 1 -> 1, SE 0: no fall


def test_judge_and_fold_claims_follow_their_numbers():
    ev = paper_like()
    ev.winrate["matrix"]["qwen-slerp"]["qwen-base"] = record(45, 40, 15)  # within noise
    ev.winrate["matrix"]["qwen-base"]["small-base"] = record(100, 800, 100)
    ev.winrate["matrix"]["qwen-slerp"]["small-base"] = record(800, 100, 100)  # 8-fold: not about 3.5
    ev.failure_modes["models"]["qwen-slerp"]["shares"]["language_mixing"] = 0.6  # Qwen mixes now
    result = verdicts(ev)
    assert find(result, "consistently and significantly outperform") == cl.WITHIN_NOISE
    assert find(result, "3.5-fold") == cl.CONTRADICTED
    assert find(result, "not observed in the Qwen2.5-7B") == cl.CONTRADICTED
    # 2-fold on 100 verdicts each (6% vs 3%): 3.5 inside the noise band, and so is 1
    ev.winrate["matrix"]["qwen-base"]["small-base"] = record(3, 93, 4)
    ev.winrate["matrix"]["qwen-slerp"]["small-base"] = record(6, 90, 4)
    assert find(verdicts(ev), "3.5-fold") == cl.WITHIN_NOISE


def test_training_claims_use_the_figures_numbers():
    ev = paper_like()
    ev.scaling["qwen"][1]["step_seconds"] = [1.6, 1.61, 1.59]  # 2 nodes at 62% efficiency
    ev.throughput["qwen"]["step_tokens_per_s_per_device"] = [1200.0, 1210.0, 1190.0]
    result = verdicts(ev)
    assert find(result, "near-linear scaling") == cl.CONTRADICTED
    assert find(result, "1850 tokens") == cl.CONTRADICTED
    ev.throughput = {r: {**v, "device": "cpu"} for r, v in ev.throughput.items()}
    assert find(verdicts(ev), "1850 tokens").startswith(f"{cl.NOT_COMPUTABLE}: trained on CPU")


def test_k_of_n_claims_count_settings_beyond_noise():
    h, w, c = cl.HOLDS, cl.WITHIN_NOISE, cl.CONTRADICTED
    assert cl.k_of_n([h, h, h, w, w, c, c, c], 3) == cl.HOLDS
    assert cl.k_of_n([h, h, w, w, w, c, c, c], 3) == cl.WITHIN_NOISE  # a third may be hidden by noise
    assert cl.k_of_n([h, h, c, c, c, c, c, c], 3) == cl.CONTRADICTED  # 6 settings against: at most 2 left
    assert cl.k_of_n([h, h, h, h, w, w, w, w], 3) == cl.CONTRADICTED


def paper_evidence():
    """The claims' evidence from the paper's own tables (paper/reported/), mapped to config.yaml's
    model keys as the reproduction report maps them."""
    config = load(REPO / "config.yaml")
    runs = config["cpt"]["runs"]
    families = [cl.Family(r, s["base"], r, f"{r}-slerp") for r, s in runs.items() if s["corpus"] == "finemed"]
    roles = config["paper"]["claims"]
    focus_base = runs[roles["focus_run"]]["base"]
    [ablation] = [
        cl.Family(r, s["base"], r, f"{r}-slerp")
        for r, s in runs.items()
        if s["corpus"] == "fineweb2_random" and s["base"] == focus_base
    ]
    keys = {m for f in [*families, ablation] for m in (f.base, f.cpt, f.merge)}
    keys |= set(config["benchmarks"]["baselines"]["medical"])
    display = {k: display_name(config, k) for k in keys}
    index = rp.display_index(display)
    tables = {t: rp.read_reported(REPO / "paper" / "reported" / f"{t}.csv") for t in ("table4", "table9", "table11")}
    groups = {}
    for key, task in config["benchmarks"]["tasks"].items():
        groups.setdefault(task["group"], []).append(key)
    return cl.Evidence(
        families=families,
        medical_tasks=groups["medical"],
        general_tasks=groups["general"],
        benchmarks=cl.reported_benchmarks(tables, config["paper"]["reported_columns"], index),
        medical_baselines=config["benchmarks"]["baselines"]["medical"],
        ablation=ablation,
        display=display,
        absent=cl.REPORTED_ABSENT,
        **roles,
    )


def test_the_papers_own_tables_give_the_verdicts_its_numbers_imply(monkeypatch):
    claims = {c.quote: c for c in cl.evaluate_claims(paper_evidence())}
    verdict = {q: c.verdict for q, c in claims.items()}
    # Table 4: Qwen2.5 59.08 vs Mistral 49.73 (+9.35, SE sqrt(1.68^2 + 1.71^2) = 2.40): beyond noise
    assert find(verdict, "Qwen2.5-7B-Instruct outperforms") == cl.HOLDS
    # the 24B's CPT gain, 73.51 - 71.94 = +1.57 with SE 2.17, is within noise: "consistently" is not shown
    assert find(verdict, "consistently improves") == cl.WITHIN_NOISE
    # Table 11: the 24B CPT model 68.41 < its base 70.79 (-2.38, SE sqrt(0.43^2 + 0.44^2) = 0.62):
    # A.6 contradicted by the paper's own cells
    [a6] = [c for q, c in claims.items() if "consistently outperform their base versions" in q]
    assert a6.verdict == cl.CONTRADICTED and "-2.38 ± 0.62" in a6.numbers
    # Qwen merge vs the 24B base: within noise on Anatomy, Clinical Knowledge, College Medicine; MedQA -14.60
    [comparable] = [c for q, c in claims.items() if "three out of four domain-specific" in q]
    assert comparable.verdict == cl.HOLDS and "comparable on 3 of 4" in comparable.numbers
    # Table 9: the random model ahead in 3 of 8 settings by direction (MedQA twice, College Medicine
    # once), none beyond noise
    [three] = [c for q, c in claims.items() if "three out of eight" in q]
    assert three.verdict == cl.WITHIN_NOISE and three.numbers.startswith("3 of 8 ahead by direction, 0 beyond")
    assert find(verdict, "shows improvements over its base") == cl.WITHIN_NOISE  # 61.70 vs 59.08, SE 2.36
    assert find(verdict, "strongest model") == cl.WITHIN_NOISE  # 74.94 vs 73.51 (its CPT model), SE 2.14
    # the judges' and the training numbers are not in the paper's text
    assert find(verdict, "3.5-fold") == f"{cl.NOT_COMPUTABLE}: {cl.REPORTED_ABSENT['winrate']}"
    assert find(verdict, "typos") == f"{cl.NOT_COMPUTABLE}: {cl.REPORTED_ABSENT['failure_modes']}"
    assert find(verdict, "near-linear") == f"{cl.NOT_COMPUTABLE}: {cl.REPORTED_ABSENT['scaling']}"
    # the rule at work on the paper's cells: without the noise band the 24B's +1.57 would count as a gain
    monkeypatch.setattr(cl, "SIGMA", 0.0)
    assert find(verdicts(paper_evidence()), "consistently improves") == cl.HOLDS


def test_the_report_states_the_rules_and_both_verdict_lists():
    run = cl.evaluate_claims(paper_like())
    paper = cl.evaluate_claims(paper_evidence())
    text = cl.render_claims(run, paper, miniature=False)
    assert "beyond 2 standard errors" in text.replace("exceeds 2 standard errors", "beyond 2 standard errors")
    assert "sqrt(se_a^2 + se_b^2)" in text and "multinomial" in text and str(cl.POSITION_BIAS_LIMIT) in text
    assert "### On the paper's own reported tables" in text
    rows = [x for x in text.splitlines() if x.startswith("| C")]
    assert len(rows) == 2 * len(run) == 56


def test_missing_judges_make_their_claims_not_computable():
    ev = copy.deepcopy(paper_like())
    ev.winrate, ev.failure_modes = None, None
    result = cl.evaluate_claims(ev)
    open_ = [c for c in result if c.verdict.startswith(cl.NOT_COMPUTABLE)]
    assert {c.section.split(",")[0] for c in open_} == {"5.2", "5.3", "abstract"}
    assert len(open_) == 13


def test_miniature_reproduction_report_lists_every_claim_with_its_verdict(miniature):
    text = (miniature / "paper" / "reproduction.md").read_text()
    section = text.split("## The paper's claims, checked as written", 1)[1]
    run, paper = section.split("### On the paper's own reported tables")
    rows = [line for line in run.splitlines() if line.startswith("| C")]
    assert len(rows) == 28
    verdicts = [row.split(" | ")[4] for row in rows]
    assert all(v.split(":")[0] in cl.VERDICTS for v in verdicts), verdicts
    assert any("tokens per second per GPU" in row and "not computable: trained on CPU" in row for row in rows)
    paper_rows = [line for line in paper.splitlines() if line.startswith("| C")]
    assert len(paper_rows) == 28
    # the paper's own Table 11 contradicts A.6 whatever run the report comes from (24B: 68.41 < 70.79)
    [a6] = [row for row in paper_rows if row.startswith("| C13 | A.6 |")]
    assert "contradicted" in a6 and "-2.38 ± 0.62" in a6
