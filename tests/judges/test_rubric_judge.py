"""The miniature's rubric judge (definemed/judges/rubric.py) through the judge client: on constructed
answers whose better one is known, one rule apart, it picks the better in both presentation orders;
its position bias by definemed.judges.stats is below 0.65; failure-mode counts follow the answers.

Every answer is built from a fixture fact's reference statement (the query's context, as
definemed.miniature.benchmark_fixtures.fixture_queries sets it), changed in one respect only."""

import json
import subprocess
import sys

import pytest
from conftest import REPO

from definemed.config import load
from definemed.judges.client import JudgeClient, JudgeRequest, JudgeSettings, judge_name
from definemed.judges.prompts import MODE_NAMES, PAIRWISE_SCHEMA, messages, parse_answer
from definemed.judges.requests import failure_mode_requests, failure_mode_row, pairwise_requests, verdict_row
from definemed.judges.rubric import german_vocabulary, prompt_fields, score, words
from definemed.judges.stats import failure_mode_counts, position_bias, winrate_matrix
from definemed.miniature.benchmark_fixtures import fixture_queries
from definemed.miniature.fixture_text import MEDICAL_FACTS

QUERIES = fixture_queries()
FACTS = {q["id"]: f for q, f in zip(QUERIES, MEDICAL_FACTS)}
NONSENSE = "Quorzelbax"  # in no German vocabulary
OFF_TOPIC = "Die Zwiebeln schälen, fein würfeln und in etwas Butter glasig dünsten."  # fixture text, topic kochen
N_BIAS = 20  # queries of the position-bias set: 15 model pairs x 2 orders each
SETTINGS = JudgeSettings.from_config({"backend": "rubric", "model": "rubric-v1"})


def swap_answer(q):
    """The reference statement with the fact's answer replaced by its first wrong answer that shares
    no word with the rest of the statement."""
    f = FACTS[q["id"]]
    assert f["answer"] in q["context"]  # fixture_text.yaml: statements contain the answer verbatim
    rest = set(words(q["context"].replace(f["answer"], " ")))
    wrong = next(d for d in f["distractors"] if not set(words(d)) & rest)
    return q["context"].replace(f["answer"], wrong)


def cut(q):
    """The same words, stopped before the sentence ends (what a response cut at its token limit
    looks like to a judge)."""
    return q["context"].rstrip(" .!?")


def looping(q):
    w = q["context"].split()
    return " ".join(w[:3] * 5 + w[3:])


def garbled(q):
    w = q["context"].split()
    return " ".join([w[0], NONSENSE, *w[1:]])


def english(q):
    w = q["context"].split()
    return " ".join([w[0], "the", *w[1:]])


# better answer (the reference statement) against a worse one, one rule apart
WORSE = {"reference answer": swap_answer, "turn ended": cut, "repetition": looping, "off-vocabulary words": garbled}


def judge(requests, tmp_path, name="c"):
    client = JudgeClient(SETTINGS, tmp_path / f"{name}.sqlite")
    records, stats = client.run(requests)
    client.close()
    return records, stats


def pairwise_rows(generations, models, tmp_path, queries=QUERIES):
    requests = pairwise_requests(queries, generations, models, both_orders=True)
    records, _ = judge(requests, tmp_path, "pairwise")
    return [verdict_row(r, records[r.custom_id], judge_name(SETTINGS)) for r in requests]


def test_the_constructed_answers_differ_in_one_rule_only():
    """The fixture: each worse answer breaks its own rule and no other."""
    for q in QUERIES:
        good = score(q["context"], q["query"], q["context"])
        assert good.points == {"reference answer": 3.0, "turn ended": 1.0, "repetition": 0.0, "length": 0.0,
                               "off-vocabulary words": 0.0}, q  # fmt: skip
        for rule, make in WORSE.items():
            bad = score(q["context"], q["query"], make(q)).points
            assert [r for r in bad if bad[r] != good.points[r]] == [rule], (rule, q["id"], bad)


@pytest.mark.parametrize("rule", sorted(WORSE))
def test_the_better_answer_wins_in_both_presentation_orders(rule, tmp_path):
    generations = {
        "better": {q["id"]: q["context"] for q in QUERIES},
        "worse": {q["id"]: WORSE[rule](q) for q in QUERIES},
    }
    rows = pairwise_rows(generations, ["better", "worse"], tmp_path)
    assert len(rows) == 2 * len(QUERIES) and all(v["status"] == "valid" for v in rows)
    assert {v["model_a"] for v in rows} == {"better", "worse"}  # both orders judged
    assert all(v["winner"] == "better" for v in rows), [v for v in rows if v["winner"] != "better"][:2]
    assert all(f"decided by {rule} (" in v["reasoning"] for v in rows)  # the rule that decided is named
    cell = winrate_matrix(rows, ["better", "worse"])["better"]["worse"]
    assert cell["win_rate"] == 1.0 and cell["n"] == 2 * len(QUERIES)


def test_equal_answers_tie_and_position_bias_stays_below_065(tmp_path):
    """A constructed set: two quality levels (the reference statement, and the same cut before its
    end), each in three surface forms that no rule sees (as is, lower-cased first letter, a double
    space), every pair in both orders: 9 decisive pairs and 6 of equal quality per query. The
    judge's first-position share by definemed.judges.stats.position_bias; a judge that gave ties to
    the first response would reach 0.7."""
    forms = {"": lambda t: t, "lower ": lambda t: t[0].lower() + t[1:], "spaced ": lambda t: t.replace(" ", "  ", 1)}
    generations = {}
    for level, make in (("reference", lambda q: q["context"]), ("cut", cut)):
        for form, surface in forms.items():
            generations[form + level] = {q["id"]: surface(make(q)) for q in QUERIES[:N_BIAS]}
    rows = pairwise_rows(generations, list(generations), tmp_path, QUERIES[:N_BIAS])
    assert all(v["status"] == "valid" for v in rows)
    bias = position_bias(rows)
    assert bias["share"] < 0.65, bias
    assert bias["decisive"] == 2 * 9 * N_BIAS and bias["share"] == 0.5
    for v in rows:
        same_level = v["pair"][0].split()[-1] == v["pair"][1].split()[-1]
        assert v["winner"] == ("tie" if same_level else next(m for m in v["pair"] if m.endswith("reference")))
        assert (v["winner_label"] == "0") == same_level
    # each (pair, query) gets the same verdict in both orders
    by = {}
    for v in rows:
        by.setdefault((tuple(v["pair"]), v["query_id"]), set()).add(v["winner"])
    assert all(len(w) == 1 for w in by.values())


def test_failure_mode_counts_follow_the_answers(tmp_path):
    """Two constructed models: one answers with the reference statements, the other with one flaw
    per answer in turn; the counts name the flaws by the stated mapping."""
    flaws = {  # flaw -> (answer, the modes it must raise)
        "wrong answer": (swap_answer, {"omission", "hallucination"}),
        "cut": (cut, {"omission"}),
        "loop": (looping, {"repetition"}),
        "garbled": (garbled, {"typo"}),
        "english": (english, {"language_mixing"}),
        "empty": (lambda q: "", {"omission", "underexplained"}),
        "off topic": (lambda q: OFF_TOPIC, {"omission", "irrelevance", "hallucination"}),
    }  # fmt: skip
    names = list(flaws)
    flaw_of = {q["id"]: names[i % len(names)] for i, q in enumerate(QUERIES)}
    generations = {
        "sound": {q["id"]: q["context"] for q in QUERIES},
        "flawed": {q["id"]: flaws[flaw_of[q["id"]]][0](q) for q in QUERIES},
    }
    requests = failure_mode_requests(QUERIES, generations, ["sound", "flawed"])
    records, _ = judge(requests, tmp_path, "failure_modes")
    rows = [failure_mode_row(r, records[r.custom_id], judge_name(SETTINGS)) for r in requests]
    assert all(r["status"] == "valid" for r in rows)
    for r in rows:
        expected = set() if r["model"] == "sound" else flaws[flaw_of[r["query_id"]]][1]
        assert {m for m, on in r["modes"].items() if on} == expected, (r["model"], flaw_of[r["query_id"]], r)
    by_model = {m: [r for r in rows if r["model"] == m] for m in ("sound", "flawed")}
    counts = failure_mode_counts(by_model, ["sound", "flawed"], {"sound": "sound", "flawed": "flawed"})
    assert counts["sound"]["counts"] == {m: 0 for m in MODE_NAMES}
    assert counts["flawed"]["counts"] != counts["sound"]["counts"]
    for mode in ("omission", "hallucination", "repetition", "typo", "language_mixing", "underexplained", "irrelevance"):
        want = sum(mode in flaws[flaw_of[q["id"]]][1] for q in QUERIES)
        assert counts["flawed"]["counts"][mode] == want > 0, mode


def test_answers_parse_under_the_a7_schemas_and_go_through_the_cache(tmp_path):
    gens = {"a": {q["id"]: q["context"] for q in QUERIES[:3]}, "b": {q["id"]: cut(q) for q in QUERIES[:3]}}
    requests = pairwise_requests(QUERIES[:3], gens, ["a", "b"], both_orders=True)
    records, stats = judge(requests, tmp_path)
    assert stats.answered == len(requests) and stats.http_calls == 0
    for r in requests:
        rec = records[r.custom_id]
        assert set(rec) >= {"status", "content", "finish_reason", "model", "usage", "attempts", "error", "key"}
        assert parse_answer(rec, PAIRWISE_SCHEMA)[0] is not None
        assert rec["model"].startswith("rubric:rubric-v1@")  # the rules' digest is in the cache key
    again, stats2 = judge(requests, tmp_path)
    assert stats2.sent == 0 and stats2.cached == len(requests) and again == records
    # how each run went is recorded beside the cache, not in the records (the results' bytes)
    history = [json.loads(line) for line in (tmp_path / "c.history.jsonl").read_text().splitlines()]
    assert [(h["cached"], h["sent"]) for h in history] == [(0, len(requests)), (len(requests), 0)]


def test_the_rubric_reads_what_the_judge_prompt_shows_and_refuses_what_it_cannot_read(tmp_path):
    q = QUERIES[0]
    msgs = messages("pairwise", context=q["context"], query=q["query"], response_a="x\ny", response_b="")
    assert prompt_fields("pairwise_verdict", list(msgs)) == {
        "context": q["context"], "query": q["query"], "response_a": "x\ny", "response_b": ""
    }  # fmt: skip
    tricky = messages("pairwise", context="", query="Q", response_a="a\nResponse B:\nb", response_b="c")
    translation = messages("translation", question="Q", answer="A")
    requests = [
        JudgeRequest("ambiguous", tricky, "pairwise_verdict", PAIRWISE_SCHEMA),
        JudgeRequest("translation", translation, "translation", {"type": "object"}),
    ]
    records, stats = judge(requests, tmp_path)
    assert stats.failed == 2
    assert "more than one way" in records["ambiguous"]["error"]
    assert "not 'translation'" in records["translation"]["error"]


def test_the_vocabulary_is_the_fixture_texts_german():
    vocab = german_vocabulary()
    assert len(vocab) > 5000 and {"femur", "knochen", "mitralklappe"} <= vocab
    assert not {"the", "and", "anatomy", NONSENSE.lower()} & vocab  # English ids and keys stay out
    assert words("Das Femur, 30 kg/m².") == ["das", "femur", "30", "kg", "m²"]


def test_the_miniature_judges_with_the_rubric_and_loads_no_model():
    mini = load(REPO / "config" / "miniature.yaml")["judges"]
    assert mini["pairwise"]["judge"]["backend"] == mini["failure_modes"]["judge"]["backend"] == "rubric"
    paper = load(REPO / "config.yaml")["judges"]
    assert paper["pairwise"]["judge"]["backend"] != "rubric" and paper["failure_modes"]["judge"]["backend"] != "rubric"
    code = (
        "import sys, json, tempfile\n"
        "from definemed.judges.client import JudgeClient, JudgeSettings\n"
        "from definemed.judges.requests import pairwise_requests\n"
        "from definemed.miniature.benchmark_fixtures import fixture_queries\n"
        "q = fixture_queries()\n"
        f"c = JudgeClient(JudgeSettings.from_config({SETTINGS.to_dict()!r}), tempfile.mkdtemp() + '/c.sqlite')\n"
        "c.run(pairwise_requests(q, {'a': {x['id']: x['context'] for x in q}, 'b': {x['id']: '' for x in q}},"
        " ['a', 'b'], True))\n"
        "assert not {'torch', 'transformers', 'xgrammar'} & set(sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, timeout=120)


def test_figures_and_the_report_name_the_rubric_judge(tmp_path):
    """Figures 2 and 3 and the reproduction report name the judge and its rules, from the result
    files' `judge` as scripts/pairwise_winrate.py and failure_mode_counts.py write it."""
    from definemed.paper import figures
    from definemed.paper.reproduction import judge_note

    gens = {"a": {q["id"]: q["context"] for q in QUERIES}, "b": {q["id"]: cut(q) for q in QUERIES}}
    rows = pairwise_rows(gens, ["a", "b"], tmp_path)
    name = judge_name(SETTINGS)
    assert {v["judge"] for v in rows} == {name} and "rubric-v1" in name and "off-vocabulary words" in name
    winrate = {"judge": name, "models": ["a", "b"], "verdicts": len(rows), "invalid": 0,
               "position_bias": position_bias(rows), "matrix": winrate_matrix(rows, ["a", "b"])}  # fmt: skip
    zero = {m: 0 for m in MODE_NAMES}
    entry = {"judged": 1, "counts": zero, "shares": {m: 0.0 for m in MODE_NAMES}}
    counts = {"judge": name, "modes": MODE_NAMES, "models": {"a": entry, "b": entry}}
    for fig in (figures.figure2(winrate, {}), figures.figure3(counts, {})):
        title = " ".join(fig.axes[0].get_title().split())
        assert f"(judge: {name}" in title, title
    note = judge_note(winrate, counts, miniature=True)
    assert f"Pairwise (Figure 2): {name}" in note and f"Failure modes (Figure 3): {name}" in note
    assert "first-presented response): 0.50 of" in note and "definemed/judges/rubric.py" in note
    assert "rubric" not in judge_note({**winrate, "judge": "gpt-4.1-mini"}, None, miniature=False)
