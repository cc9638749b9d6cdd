"""Judges of 5.2 and 5.3: prompts as in A.7, win-rate arithmetic, models of Figures 2 and 3, and the
miniature's generations, verdicts, win-rate matrix and failure-mode counts."""

import json
import re
import subprocess
import sys

import jsonschema
import pytest
from conftest import REPO

from definemed.chat import load_tokenizer, prompt_sha256, user_prompt_ids
from definemed.config import load
from definemed.io import read_jsonl, write_jsonl
from definemed.judges.client import JudgeSettings, judge_name
from definemed.judges.generation import generation_models, instruct_base
from definemed.judges.prompts import FAILURE_MODES, MODE_NAMES, PAIRWISE_SCHEMA, failure_mode_schema, messages
from definemed.judges.requests import generation_weights
from definemed.judges.stats import failure_mode_counts, wilson, winrate_matrix
from definemed.model_facts import weights_sha256

PAPER = load(REPO / "config.yaml")


def test_pairwise_prompt_carries_the_enforced_schema_verbatim():
    system, user = messages("pairwise", context="K", query="Q", response_a="RA", response_b="RB")
    assert system["content"].startswith("You are an AI assistant that evaluates pairs of responses")
    block = re.search(r"```json\n(.*?)\n```", user["content"], re.S).group(1)
    assert json.loads(block) == PAIRWISE_SCHEMA
    assert user["content"].endswith(
        "Context:\nK\nQuery:\nQ\nResponse A:\nRA\nResponse B:\nRB\n"
        "Based on the query and context above, which response is better?"
    )


def test_failure_mode_prompt_has_the_14_required_modes_in_the_papers_order():
    system, user = messages("failure_modes", context="K", query="Q", response="R")
    schema = json.loads(re.search(r"```json\n(.*?)\n```", system["content"], re.S).group(1))
    assert schema == failure_mode_schema()
    assert schema["required"] == [
        "language_mixing", "typo", "contradiction", "hallucination", "omission", "overgeneralization",
        "irrelevance", "verbosity", "underexplained", "ambiguity", "instruction_ignoring", "repetition",
        "overconfidence", "bias_or_harm",
    ]  # fmt: skip
    ours = {m for m, src, _ in FAILURE_MODES if src != "Table 10"}
    assert ours == {"irrelevance", "instruction_ignoring", "bias_or_harm"}
    assert user["content"] == "Context:\nK\nQuery (the question posed to the model):\n<<<\nQ\n>>>\n" \
        "Response (the model's answer to be evaluated):\n<<<\nR\n>>>"  # fmt: skip


def test_wilson_interval():
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert wilson(0, 0) == (None, None)
    lo, hi = wilson(0, 20)
    assert lo == 0 and hi == pytest.approx(0.1611, abs=1e-4)


def test_winrate_counts_both_orders_ties_and_invalid():
    v = [
        {"pair": ["a", "b"], "status": "valid", "winner": "a"},
        {"pair": ["a", "b"], "status": "valid", "winner": "a"},
        {"pair": ["a", "b"], "status": "valid", "winner": "b"},
        {"pair": ["a", "b"], "status": "valid", "winner": "tie"},
        {"pair": ["a", "b"], "status": "invalid", "winner": None},
    ]
    m = winrate_matrix(v, ["a", "b"])
    assert (m["a"]["b"]["wins"], m["a"]["b"]["losses"], m["a"]["b"]["ties"], m["a"]["b"]["invalid"]) == (2, 1, 1, 1)
    assert m["a"]["b"]["win_rate"] == 0.5 and m["b"]["a"]["win_rate"] == 0.25
    assert "a" not in m["a"]


def test_figure_models_are_instruct_bases_and_merges_without_the_ablation():
    models = generation_models(PAPER)
    assert models == [
        "mistral-7b-instruct-v0.3", "definemed-mistral-7b-slerp", "qwen2.5-7b-instruct",
        "definemed-qwen2.5-7b-slerp", "mistral-small-24b-instruct-2501", "definemed-mistral-small-24b-slerp",
    ]  # fmt: skip
    assert instruct_base(PAPER, "definemed-qwen2.5-7b-slerp") == "qwen2.5-7b-instruct"
    assert instruct_base(PAPER, "qwen2.5-7b-instruct") == "qwen2.5-7b-instruct"


def test_paper_cost_plan(tmp_path):
    out = tmp_path / "plan.json"
    subprocess.run(
        [sys.executable, "scripts/estimate_judge_cost.py", "--plan", "--config", "config.yaml", "--out", str(out)],
        cwd=REPO, check=True, capture_output=True,
    )  # fmt: skip
    plan = json.loads(out.read_text())
    calls = plan["calls"]
    n = PAPER["medalpaca"]["sample_size"]
    assert calls["pairwise"]["calls"] == 15 * 2 * n and calls["failure_modes"]["calls"] == 6 * n
    assert calls["translation"]["calls"] == n
    assert calls["pairwise"]["price"]["input"] == 0.40 and calls["failure_modes"]["price"]["output"] == 8.00
    assert plan["total"] == pytest.approx(sum(c["cost"] for c in calls.values()))
    assert 0 < plan["total"] < PAPER["judges"]["max_cost_usd"]


# -- the miniature ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def judged(miniature_config):
    return generation_models(miniature_config)


def test_miniature_generations(miniature, miniature_config, judged):
    queries = read_jsonl(miniature / "results" / "medalpaca" / "queries.jsonl")
    assert len(queries) == miniature_config["medalpaca"]["sample_size"]
    assert all(q["query"].endswith("?") and q["context"] for q in queries)  # German fixture questions
    for m in judged:
        rows = read_jsonl(miniature / "results" / "generations" / f"{m}.jsonl")
        assert [r["id"] for r in rows] == [q["id"] for q in queries]
        assert all(r["model"] == m and isinstance(r["response"], str) for r in rows)
        assert all(0 < r["response_tokens"] <= miniature_config["generation"]["max_new_tokens"] for r in rows)
        assert rows[0]["decoding"]["temperature"] == miniature_config["generation"]["temperature"]
        # every response names the weights that wrote it: the model folder's own, and the judges name them too
        assert {r["model_weights_sha256"] for r in rows} == {weights_sha256(miniature / "models" / m)}
        # and the prompt it answered: the query in its instruct base's template, on the configured day
        tok = load_tokenizer(miniature / "models" / instruct_base(miniature_config, m))
        date = miniature_config["chat_template_date"]
        assert all(r["chat_template_date"] == date for r in rows)
        assert [r["prompt_sha256"] for r in rows] == [
            prompt_sha256(user_prompt_ids(tok, q["query"], date)) for q in queries
        ]
    for stage in ("pairwise", "failure_modes"):
        run = json.loads((miniature / "results" / "judges" / stage / "run.json").read_text())
        assert run["model_weights_sha256"] == {m: weights_sha256(miniature / "models" / m) for m in judged}
    assert len(set(run["model_weights_sha256"].values())) == len(judged)  # bases and merges: distinct weights


def test_judge_results_refuse_generations_from_mixed_weights(tmp_path):
    rows = [{"model": "m", "id": i, "response": "r", "model_weights_sha256": h} for i, h in enumerate("ab")]
    write_jsonl(tmp_path / "m.jsonl", rows)
    with pytest.raises(ValueError, match="generations of m: responses from 2 different weights"):
        generation_weights([tmp_path / "m.jsonl"])
    (tmp_path / "m.jsonl").write_text(json.dumps(rows[0]) + "\n")
    assert generation_weights([tmp_path / "m.jsonl"]) == {"m": "a"}


def test_miniature_verdicts_are_schema_valid_and_the_matrix_recomputes(miniature, miniature_config, judged):
    pw = miniature / "results" / "judges" / "pairwise"
    verdicts = read_jsonl(pw / "verdicts.jsonl")
    n_queries = miniature_config["medalpaca"]["sample_size"]
    pairs = len(judged) * (len(judged) - 1) // 2
    assert len(verdicts) == pairs * 2 * n_queries  # every pair, query and order
    judge = JudgeSettings.from_config(miniature_config["judges"]["pairwise"]["judge"])
    valid = [v for v in verdicts if v["status"] == "valid"]
    assert len(valid) >= 0.9 * len(verdicts)
    for v in valid:
        jsonschema.validate({"reasoning": v["reasoning"], "winner": v["winner_label"]}, PAIRWISE_SCHEMA)
        if judge.backend == "local":
            assert len(v["reasoning"]) <= judge.local.max_string_chars
        assert v["winner"] == {"A": v["model_a"], "B": v["model_b"], "0": "tie"}[v["winner_label"]]
    # both presentation orders of each (pair, query)
    orders = {(tuple(v["pair"]), v["query_id"], v["model_a"]) for v in verdicts}
    assert len(orders) == len(verdicts)

    out = json.loads((pw / "winrate.json").read_text())
    assert out["models"] == judged and set(out["display"]) == set(judged)
    assert out["judge"] == judge_name(judge)  # the rubric: its name and rules (Figure 2's title)
    assert out["position_bias"]["share"] is None or out["position_bias"]["share"] < 0.65
    # recompute from verdicts.jsonl, independently of definemed.judges.stats
    for row in judged:
        assert row not in out["matrix"][row]
        for col in judged:
            if col == row:
                continue
            mine = [v for v in verdicts if set(v["pair"]) == {row, col}]
            ok = [v for v in mine if v["status"] == "valid"]
            wins = sum(v["winner"] == row for v in ok)
            ties = sum(v["winner"] == "tie" for v in ok)
            cell = out["matrix"][row][col]
            assert (cell["wins"], cell["ties"], cell["losses"]) == (wins, ties, len(ok) - wins - ties)
            assert cell["invalid"] == len(mine) - len(ok) and cell["n"] == len(ok)
            assert cell["win_rate"] == pytest.approx(wins / len(ok))
            assert cell["ci_low"] <= cell["win_rate"] <= cell["ci_high"]
            assert cell["wins"] == out["matrix"][col][row]["losses"]


def test_miniature_failure_modes(miniature, miniature_config, judged):
    fm = miniature / "results" / "judges" / "failure_modes"
    counts = json.loads((fm / "counts.json").read_text())
    assert counts["modes"] == MODE_NAMES and set(counts["descriptions"]) == set(MODE_NAMES)
    assert list(counts["models"]) == judged
    schema = failure_mode_schema()
    rows_by_model = {}
    for m in judged:
        rows = read_jsonl(fm / f"{m}.jsonl")
        assert len(rows) == miniature_config["medalpaca"]["sample_size"]
        for r in rows:
            if r["status"] == "valid":
                jsonschema.validate(r["modes"], schema)
        rows_by_model[m] = rows
        entry = counts["models"][m]
        valid = [r for r in rows if r["status"] == "valid"]
        assert entry["judged"] == len(valid) > 0 and entry["responses"] == len(rows)
        for mode in MODE_NAMES:
            assert entry["counts"][mode] == sum(r["modes"][mode] for r in valid)
            assert entry["shares"][mode] == pytest.approx(entry["counts"][mode] / len(valid))
    display = {m: counts["models"][m]["display"] for m in judged}
    assert failure_mode_counts(rows_by_model, judged, display) == counts["models"]


def test_miniature_cost_estimate_is_written_before_judging(miniature):
    est = json.loads((miniature / "results" / "judges" / "cost_estimate.json").read_text())
    assert est["currency"] == "USD" and est["total"] == 0.0  # the rubric judge costs nothing
    assert est["calls"]["pairwise"]["backend"] == "rubric" and est["calls"]["pairwise"]["input_tokens"] > 0


@pytest.mark.parametrize("run", ["miniature", "paper"])
def test_every_judge_job_takes_the_cost_estimate_as_input(run):
    """Estimate before judging, by the DAG (not by file times): in the job graph of the whole run
    (`snakemake --forceall --dag`), the one judge_cost_estimate job is an input of every
    judge_pairwise and judge_failure_modes job, so Snakemake cannot start a judge before it. About
    12 s each (DAG building, no job runs)."""
    from conftest import snakemake

    args = ["--profile", "profiles/miniature"] if run == "miniature" else []
    dot = snakemake(REPO, *args, "--nolock", "--forceall", "--dag", timeout=300).stdout
    rules = {m.group(1): m.group(2).split("\\n")[0] for m in re.finditer(r'^\s*(\d+)\[label = "([^"]+)"', dot, re.M)}
    edges = set(re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M))
    (estimate,) = [n for n, r in rules.items() if r == "judge_cost_estimate"]
    judges = [n for n, r in rules.items() if r in ("judge_pairwise", "judge_failure_modes")]
    assert sorted(rules[n] for n in judges) == ["judge_failure_modes", "judge_pairwise"], judges
    for judge in judges:
        assert (estimate, judge) in edges, f"{rules[judge]} does not read the cost estimate"
