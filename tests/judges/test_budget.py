"""judges.max_cost_usd stops every paid stage before its first call: each script that calls a paid
judge endpoint (both translations and both judges) run against the loopback server with a budget
below its estimate exits naming the key, and the server sees zero requests. The same command with a
budget above the estimate does reach the server, so the zero is the budget's doing."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO
from test_judge_client import CANARY, judge_settings

from definemed.io import write_jsonl
from definemed.judges.cost import JudgesSettings, cost_estimate, estimate_stage
from definemed.judges.requests import JudgeStageSettings, translation_requests
from tests.support.servers.judge_server import JudgeServer

PRICES = {"gpt-4.1-mini": {"input": 0.40, "output": 1.60, "batch_discount": 0.5}}
MODELS = ("m1", "m2")


def jsonl_file(path, rows) -> str:
    write_jsonl(path, rows)
    return str(path)


def judges_section(server, limit):
    stage = {"judge": judge_settings(server, max_retries=0).to_dict(), "output_tokens": 300}
    return {
        "pairwise": {**stage, "both_orders": True},
        "failure_modes": stage,
        "prices": PRICES,
        "max_cost_usd": limit,
    }


def budget(judges) -> str:
    """What the rules pass a translation as --judges: the prices and the budget only."""
    return json.dumps({k: judges[k] for k in ("prices", "max_cost_usd")})


def translate_medalpaca(tmp, server, judges):
    rows = [{"id": f"q{i}", "question": f"What helps against headache {i}?", "answer": "Rest."} for i in range(4)]
    stage = {"judge": judges["pairwise"]["judge"], "output_tokens": 300}
    judge = JudgeStageSettings.from_config(stage).judge
    estimate = estimate_stage("translation", translation_requests(rows), judge, PRICES, 300)["cost"]
    args = ["translate_queries.py", "--sample", jsonl_file(tmp / "sample_en.jsonl", rows)]
    args += ["--settings", json.dumps(stage), "--judges", budget(judges), "--cache", str(tmp / "t.sqlite")]
    return args + ["--out", str(tmp / "queries.jsonl"), "--out-stats", str(tmp / "stats.json")], estimate


def translate_medqa(tmp, server, judges):
    from definemed.judges.requests import medqa_translation_requests as medqa_requests

    rows = [
        {
            "id": str(i),
            "sent1": f"A patient {i} presents with fever.",
            "label": 1,
            **{f"ending{j}": f"option {j}" for j in range(4)},
        }
        for i in range(4)
    ]
    stage = {"judge": judges["pairwise"]["judge"], "output_tokens": 300}
    judge = JudgeStageSettings.from_config(stage).judge
    estimate = estimate_stage("medqa_translation", medqa_requests(rows), judge, PRICES, 300)["cost"]
    args = ["translate_medqa.py", "--sample", jsonl_file(tmp / "medqa_en.jsonl", rows)]
    args += ["--settings", json.dumps(stage), "--judges", budget(judges), "--cache", str(tmp / "m.sqlite")]
    return args + ["--out", str(tmp / "medqa_de.jsonl"), "--out-stats", str(tmp / "stats.json")], estimate


def judge_inputs(tmp, judges):
    queries = [{"id": f"q{i}", "query": f"Frage {i}", "context": "Antwort"} for i in range(3)]
    gens = {m: {q["id"]: f"{m} sagt {q['id']}" for q in queries} for m in MODELS}
    files = [
        jsonl_file(
            tmp / f"{m}.jsonl",
            [
                {"id": q, "response": r, "model": m, "model_weights_sha256": f"weights of {m}"}
                for q, r in gens[m].items()
            ],
        )
        for m in MODELS
    ]
    estimate = cost_estimate(queries, gens, list(MODELS), JudgesSettings.from_config(judges))
    (tmp / "cost_estimate.json").write_text(json.dumps(estimate))
    common = ["--queries", jsonl_file(tmp / "queries.jsonl", queries), "--generations", *files, "--models", *MODELS]
    common += ["--judges", json.dumps(judges), "--estimate", str(tmp / "cost_estimate.json")]
    return common, estimate["total"]


def judge_pairwise(tmp, server, judges):
    common, estimate = judge_inputs(tmp, judges)
    args = ["judge_pairwise.py", *common, "--settings", json.dumps(judges["pairwise"])]
    args += ["--cache", str(tmp / "p.sqlite"), "--out", str(tmp / "v.jsonl"), "--out-stats", str(tmp / "run.json")]
    return args, estimate


def judge_failure_modes(tmp, server, judges):
    common, estimate = judge_inputs(tmp, judges)
    args = ["judge_failure_modes.py", *common, "--settings", json.dumps(judges["failure_modes"])]
    args += ["--cache", str(tmp / "f.sqlite"), "--out-dir", str(tmp / "fm"), "--out-stats", str(tmp / "run.json")]
    return args, estimate


@pytest.mark.parametrize("stage", [translate_medalpaca, translate_medqa, judge_pairwise, judge_failure_modes])
def test_budget_below_estimate_stops_paid_stage_before_any_request(tmp_path, stage):
    env = dict(os.environ, DEFINEMED_TEST_JUDGE_KEY=CANARY)
    for attempt, factor in (("over", 0.5), ("within", 2.0)):
        tmp = tmp_path / attempt
        tmp.mkdir()
        with JudgeServer(CANARY, fault_rate=0.0) as server:
            args, estimate = stage(tmp, server, judges_section(server, None))
            assert estimate > 0
            args, _ = stage(tmp, server, judges_section(server, round(estimate * factor, 8)))
            cmd = [sys.executable, str(REPO / "scripts" / args[0]), *args[1:]]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
            requests = server.http_requests
        if attempt == "over":
            assert proc.returncode != 0
            assert "judges.max_cost_usd" in proc.stderr and "no call was made" in proc.stderr, proc.stderr[-2000:]
            assert requests == 0
            assert not (tmp / "stats.json").exists() and not (tmp / "run.json").exists()
        else:  # the control: the same stage within its budget does call the endpoint
            assert proc.returncode == 0 and "judges.max_cost_usd" not in proc.stderr, proc.stderr[-2000:]
            assert requests > 0
            for out in OUTPUTS[stage.__name__]:  # and wrote what it writes
                assert (tmp / out).exists(), out
                if (tmp / out).is_dir():  # the failure-mode verdicts: one file per judged model
                    assert sorted(f.name for f in (tmp / out).glob("*.jsonl")) == [f"{m}.jsonl" for m in MODELS]
                    assert all(len((tmp / out / f"{m}.jsonl").read_text().splitlines()) == 3 for m in MODELS)
                if out.endswith(".jsonl"):
                    rows = [json.loads(line) for line in (tmp / out).read_text().splitlines() if line.strip()]
                    assert len(rows) == ROWS[stage.__name__], (out, rows)


# what each stage writes within its budget (below tmp), and how many rows its .jsonl holds
OUTPUTS = {
    "translate_medalpaca": ["queries.jsonl", "stats.json"],
    "translate_medqa": ["medqa_de.jsonl", "stats.json"],
    "judge_pairwise": ["v.jsonl", "run.json"],
    "judge_failure_modes": ["fm", "run.json"],
}
ROWS = {"translate_medalpaca": 4, "translate_medqa": 4, "judge_pairwise": 6}  # 3 queries x both orders
