"""The judge client's OpenAI path against a real HTTP server on loopback with injected 429s, 500s and
timeouts on about a third of the requests (tests/support/servers/judge_server.py), and the API key's
secrecy."""

import dataclasses
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from definemed.config import validated
from definemed.io import write_jsonl
from definemed.judges.client import FatalJudgeError, JudgeClient, JudgeRequest, JudgeSettings
from definemed.judges.prompts import PAIRWISE_SCHEMA, messages, parse_answer
from tests.support.servers.judge_server import JudgeServer

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e-DO-NOT-LEAK"


# An answer takes milliseconds; the client waits CLIENT_TIMEOUT_S for one, so a normal answer that
# is late on a loaded 2-core CI machine is not taken for a timeout (and retried: it would then count
# as answered twice). The server's injected timeouts hold the connection 2.5 s longer than
# the client waits, so the client has surely given up before the server closes without an answer.
CLIENT_TIMEOUT_S = 5.0
HOLD_S = CLIENT_TIMEOUT_S + 2.5


def judge_settings(server, **over) -> JudgeSettings:
    return JudgeSettings.from_config(
        {
            "backend": "openai",
            "model": "gpt-4.1-mini",
            "base_url": server.base_url,
            "api_key_env": "DEFINEMED_TEST_JUDGE_KEY",
            "concurrency": 6,
            "max_retries": 3,
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.05,
            "timeout_s": CLIENT_TIMEOUT_S,
            "batch_poll_s": 0.01,
            **over,
        }
    )


def make_requests(n, special=()):
    out = []
    for i in range(n):
        query = f"Frage {i}: Was hilft gegen Kopfschmerzen?"
        for marker in special:
            if i % marker[0] == marker[1]:
                query += f" {marker[2]}"
        out.append(
            JudgeRequest(
                custom_id=f"r{i}",
                messages=messages("pairwise", context="", query=query, response_a=f"A{i}", response_b=f"B{i}"),
                schema_name="pairwise_verdict",
                schema=PAIRWISE_SCHEMA,
            )
        )
    return out


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv("DEFINEMED_TEST_JUDGE_KEY", CANARY)


SPECIAL = [(17, 3, "ALWAYS-FAIL"), (19, 5, "INVALID-JSON")]


def test_faults_retried_every_request_ends_answered_or_failed_none_twice_rerun_free(tmp_path, key_env):
    requests = make_requests(90, SPECIAL)
    with JudgeServer(CANARY, fault_rate=1 / 3, timeout_hold_s=HOLD_S, seed=7) as server:
        settings = judge_settings(server)
        client = JudgeClient(settings, tmp_path / "cache.sqlite")
        records, stats = client.run(requests)
        client.close()
        # faults of every kind were injected, on about a third of the requests
        assert server.faults[429] and server.faults[500] and server.faults["timeout"]
        injected = server.faults[429] + server.faults[500] + server.faults["timeout"]
        assert 0.2 < injected / (server.http_requests - server.faults[503]) < 0.5
        # every request ends answered or recorded as failed; nothing is dropped
        assert set(records) == {r.custom_id for r in requests}
        always_fail = {r.custom_id for r in requests if "ALWAYS-FAIL" in r.messages[1]["content"]}
        for cid, rec in records.items():
            assert rec["status"] in ("ok", "failed")
            if cid in always_fail:
                assert rec["status"] == "failed" and rec["attempts"] == settings.max_retries + 1
                assert "503" in rec["error"]
        assert stats.answered + stats.failed == stats.sent == 90
        assert stats.failed >= len(always_fail)
        # none answered twice: the server sent at most one answer per request body
        assert max(server.answered.values()) == 1
        assert sum(server.answered.values()) == stats.answered
        # invalid answers are recorded as such, not dropped
        invalid = [r for r in requests if "INVALID-JSON" in r.messages[1]["content"]]
        for r in invalid:
            if records[r.custom_id]["status"] == "ok":
                assert parse_answer(records[r.custom_id], PAIRWISE_SCHEMA)[1].startswith("invalid")
        ok = [r for r in requests if records[r.custom_id]["status"] == "ok" and r not in invalid]
        assert ok and all(parse_answer(records[r.custom_id], PAIRWISE_SCHEMA)[0] for r in ok)

        # a rerun makes zero calls and returns the same records
        calls = server.http_requests
        client = JudgeClient(settings, tmp_path / "cache.sqlite")
        again, stats2 = client.run(requests)
        client.close()
        assert server.http_requests == calls
        assert stats2.sent == 0 and stats2.cached == 90
        assert {k: v["status"] for k, v in again.items()} == {k: v["status"] for k, v in records.items()}

        # retry_failed sends exactly the recorded failures again
        failed = [r for r in requests if records[r.custom_id]["status"] == "failed"]
        client = JudgeClient(dataclasses.replace(settings, retry_failed=True), tmp_path / "cache.sqlite")
        _, stats3 = client.run(requests)
        client.close()
        assert stats3.sent == len(failed)
        assert max(server.answered.values()) == 1


def test_identical_requests_are_sent_once(tmp_path, key_env):
    base = make_requests(1)[0]
    twins = [JudgeRequest(f"t{i}", base.messages, base.schema_name, base.schema) for i in range(5)]
    with JudgeServer(CANARY, fault_rate=0) as server:
        records, stats = JudgeClient(judge_settings(server), tmp_path / "c.sqlite").run(twins)
    assert stats.unique == 1 and stats.sent == 1 and server.http_requests == 1
    assert len({r["key"] for r in records.values()}) == 1


def test_bad_key_stops_the_run_and_records_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("DEFINEMED_TEST_JUDGE_KEY", "sk-wrong")
    with JudgeServer(CANARY, fault_rate=0) as server:
        client = JudgeClient(judge_settings(server), tmp_path / "c.sqlite")
        with pytest.raises(FatalJudgeError):
            client.run(make_requests(3))
        assert client.cache.keys() == set()


def test_rejected_request_fails_at_once_and_the_key_is_scrubbed(tmp_path, key_env, caplog):
    caplog.set_level(logging.DEBUG)
    with JudgeServer(CANARY, fault_rate=0) as server:
        records, stats = JudgeClient(judge_settings(server), tmp_path / "c.sqlite").run(
            make_requests(2, [(1, 0, "ECHO-KEY")])
        )
    assert stats.failed == 2 and all(r["attempts"] == 1 and "HTTP 400" in r["error"] for r in records.values())
    assert all(CANARY not in r["error"] and "***" in r["error"] for r in records.values())
    assert CANARY not in caplog.text
    assert CANARY.encode() not in (tmp_path / "c.sqlite").read_bytes()


def test_batch_api_submits_once_and_resumes(tmp_path, key_env):
    requests = make_requests(12, [(5, 2, "ALWAYS-FAIL")])
    with JudgeServer(CANARY, fault_rate=0) as server:
        settings = judge_settings(server, batch_api=True)
        records, stats = JudgeClient(settings, tmp_path / "c.sqlite").run(requests)
        assert len(server.batches) == 1 and server.batch_polls >= 2
        failing = [r.custom_id for r in requests if "ALWAYS-FAIL" in r.messages[1]["content"]]
        assert all(records[c]["status"] == "failed" for c in failing)
        assert sum(r["status"] == "ok" for r in records.values()) == 12 - len(failing)
        assert max(server.answered.values()) == 1
        calls = server.http_requests
        _, stats2 = JudgeClient(settings, tmp_path / "c.sqlite").run(requests)
        assert server.http_requests == calls and stats2.sent == 0


def test_batch_submitted_by_a_killed_job_is_polled_not_resubmitted(tmp_path, key_env):
    requests = make_requests(4)
    with JudgeServer(CANARY, fault_rate=0) as server:
        settings = judge_settings(server, batch_api=True)
        client = JudgeClient(settings, tmp_path / "c.sqlite")
        polls = {"n": 0}

        def killed(_seconds):  # the job dies while waiting for its batch
            polls["n"] += 1
            raise KeyboardInterrupt

        client.sleep = killed
        with pytest.raises(KeyboardInterrupt):
            client.run(requests)
        assert len(server.batches) == 1 and client.cache.keys() == set()
        records, _ = JudgeClient(settings, tmp_path / "c.sqlite").run(requests)
        assert len(server.batches) == 1  # resumed, not submitted again
        assert all(r["status"] == "ok" for r in records.values())


def test_canary_key_never_in_outputs_cache_or_logs(tmp_path):
    """The pairwise script end to end against the loopback server, key from the environment."""
    queries = [
        {"id": f"q{i}", "query": f"Frage {i}" + (" ECHO-KEY" if i == 0 else ""), "context": "c"} for i in range(4)
    ]
    write_jsonl(tmp_path / "queries.jsonl", queries)
    gens = []
    for m in ("m1", "m2"):
        path = tmp_path / f"{m}.jsonl"
        path.write_text(
            "".join(
                json.dumps(
                    {"id": q["id"], "query": q["query"], "response": f"{m} sagt {q['id']}", "model": m}
                    | {"model_weights_sha256": f"weights of {m}"}  # as generate_responses.py writes it
                )
                + "\n"
                for q in queries
            )
        )
        gens.append(str(path))
    with JudgeServer(CANARY, fault_rate=1 / 3, timeout_hold_s=HOLD_S, seed=3) as server:
        stage = {"judge": judge_settings(server).to_dict(), "both_orders": True, "output_tokens": 300}
        judges = {"pairwise": stage, "failure_modes": {"judge": stage["judge"]}, "max_cost_usd": None}
        out = tmp_path / "results"
        log = tmp_path / "judge.log"
        estimate = tmp_path / "cost_estimate.json"
        estimate.write_text(json.dumps({"total": 0.0, "calls": {"pairwise": {"cost": 0.0}}}))
        env = dict(os.environ, DEFINEMED_TEST_JUDGE_KEY=CANARY, OPENAI_LOG="debug")
        with open(log, "w") as f:
            cmd = [sys.executable, str(REPO / "scripts" / "judge_pairwise.py")]
            cmd += ["--queries", str(tmp_path / "queries.jsonl"), "--generations", *gens, "--models", "m1", "m2"]
            cmd += ["--settings", json.dumps(stage), "--cache", str(tmp_path / "work" / "cache.sqlite")]
            cmd += ["--judges", json.dumps(judges), "--estimate", str(estimate)]
            cmd += ["--out", str(out / "verdicts.jsonl"), "--out-stats", str(out / "run.json")]
            subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        assert server.faults  # the faults were there
    verdicts = [json.loads(x) for x in (out / "verdicts.jsonl").read_text().splitlines()]
    assert len(verdicts) == 8 and {v["status"] for v in verdicts} <= {"valid", "failed", "invalid"}
    assert sum(v["status"] == "valid" for v in verdicts) >= 6
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert log in files and any(p.suffix == ".sqlite" for p in files)
    for p in files:
        assert CANARY.encode() not in p.read_bytes(), p
        assert CANARY[:20].encode() not in p.read_bytes(), p
    assert Path(log).read_text().count("retry") >= 1


# -- the local backend: a tiny LLM judge under xgrammar (the miniature judges with the rubric) ------
TINY_JUDGE = {  # was the miniature's judge (config/miniature.yaml) before the rubric replaced it
    "display": "tiny judge",
    "chat_template": "qwen2.5",
    "tiny": {"architecture": "qwen2", "hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
             "intermediate_size": 128, "max_position_embeddings": 4096, "judge_prompts": True,
             },
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory):
    """A random tiny Qwen2 judge whose BPE knows the A.7 prompts, built in seconds."""
    from definemed.miniature.tiny_models import build_tiny_model

    out = tmp_path_factory.mktemp("tiny-judge") / "model"
    build_tiny_model("tiny-judge", validated(TINY_JUDGE, "model"), out, seed=0)
    return out


def test_local_backend_answers_in_schema_through_xgrammar_and_the_cache(tmp_path, tiny_judge):
    """The LLM-judge path: constrained JSON from a real (random) model, records like the API's,
    free-text fields capped, a rerun answered from the cache without loading the model."""
    from definemed.judges.prompts import failure_mode_schema

    pairwise = JudgeSettings.from_config(
        {"backend": "local", "model": "tiny-judge", "max_tokens": 64,
         "local": {"max_string_chars": 24, "batch_size": 8}}
    )  # fmt: skip
    failure = dataclasses.replace(pairwise, max_tokens=400)
    requests = make_requests(4)
    fm_requests = [
        JudgeRequest(f"f{i}", messages("failure_modes", context="K", query=f"Frage {i}?", response=f"Antwort {i}."),
                     "failure_modes", failure_mode_schema())
        for i in range(2)
    ]  # fmt: skip
    for settings, reqs, schema in ((pairwise, requests, PAIRWISE_SCHEMA), (failure, fm_requests, None)):
        schema = schema or failure_mode_schema()
        cache = tmp_path / f"{settings.max_tokens}.sqlite"
        client = JudgeClient(settings, cache, model_dir=tiny_judge)
        records, stats = client.run(reqs)
        client.close()
        assert client.model_id.startswith("local:tiny-judge@")  # the build's identity, not the key alone
        assert stats.sent == len(reqs) and stats.answered + stats.failed == len(reqs)
        answers = [parse_answer(records[r.custom_id], schema)[0] for r in reqs]
        assert sum(a is not None for a in answers) >= len(reqs) - 1  # valid by construction up to max_tokens
        for a in answers:
            if a is not None and "reasoning" in a:
                assert len(a["reasoning"]) <= 24  # add_max_length on free text
        again = JudgeClient(settings, cache, model_dir=tiny_judge)
        records2, stats2 = again.run(reqs)
        assert stats2.sent == 0 and stats2.cached == len(reqs) and again._local is None  # no model loaded
        assert {k: v["content"] for k, v in records2.items()} == {k: v["content"] for k, v in records.items()}
        again.close()
