"""LLM labelling: the yes/no decision, kill-and-resume, and the miniature's label quality."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO

from definemed.dataset.labelling import decide, render_prompt


def test_decision_is_restricted_greedy_and_score_is_renormalised():
    logits = np.full((3, 10), -5.0)
    yes, no = [2, 3], [7]
    logits[0, [2, 3, 7]] = [1.0, 0.5, 0.9]  # yes token wins greedy
    logits[1, [2, 3, 7]] = [0.2, 0.1, 0.9]  # no wins
    logits[2, 9] = 50.0  # a token outside the allowed set changes nothing
    label, score = decide(logits, yes, no)
    assert label.tolist() == [True, False, False]
    p = np.exp([1.0, 0.5, 0.9])
    assert score[0] == pytest.approx((p[0] + p[1]) / p.sum())
    assert score[2] == pytest.approx(2 / 3)


def test_prompt_carries_the_document_in_the_labellers_chat_template(miniature, miniature_config):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(miniature / "models" / "tiny-mixtral-instruct")
    ids = render_prompt(
        tok,
        miniature_config["labelling"]["prompt"],
        "Die Mitralklappe schließt.",
        miniature_config["chat_template_date"],
    )
    text = tok.decode(ids)
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert text.startswith("<s>[INST] You are a medical expert")
    assert text.endswith("Content: Die Mitralklappe schließt. [/INST]")


def run_labelling(miniature, miniature_config, sample, work, out, chunk_size):
    settings = dict(
        miniature_config["labelling"], chunk_size=chunk_size, chat_template_date=miniature_config["chat_template_date"]
    )
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "label_documents.py"),
        "--sample",
        str(sample),
        "--model-dir",
        str(miniature / "models" / "tiny-mixtral-instruct"),
        "--settings",
        json.dumps(settings),
        "--work-dir",
        str(work),
        "--out",
        str(out),
        "--threads",
        "1",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_killed_labelling_resumes_to_identical_labels(miniature, miniature_config, tmp_path):
    sample = tmp_path / "sample.parquet"
    pq.write_table(pq.read_table(miniature / "results" / "labels" / "sample.parquet").slice(0, 600), sample)

    ref = run_labelling(miniature, miniature_config, sample, tmp_path / "ref-work", tmp_path / "ref.parquet", 40)
    assert ref.wait(timeout=300) == 0, ref.stdout.read()

    work, out = tmp_path / "work", tmp_path / "labels.parquet"
    proc = run_labelling(miniature, miniature_config, sample, work, out, 40)
    deadline = time.time() + 300
    while len(list(work.glob("chunk-*.parquet"))) < 3:
        assert proc.poll() is None, "finished before it could be killed"
        assert time.time() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(work.glob("chunk-*.parquet"))
    assert 3 <= len(done) < 15 and not out.exists()

    resumed = run_labelling(miniature, miniature_config, sample, work, out, 40)
    log = resumed.stdout.read()
    assert resumed.wait(timeout=300) == 0, log
    assert f"{len(done)} reused" in log
    a, b = pq.read_table(out), pq.read_table(tmp_path / "ref.parquet")
    assert a.equals(b)


def test_changed_prompt_does_not_reuse_old_chunks(miniature, miniature_config, tmp_path):
    sample = tmp_path / "sample.parquet"
    pq.write_table(pq.read_table(miniature / "results" / "labels" / "sample.parquet").slice(0, 80), sample)
    first = run_labelling(miniature, miniature_config, sample, tmp_path / "w", tmp_path / "a.parquet", 40)
    assert first.wait(timeout=300) == 0
    changed = dict(miniature_config)
    changed["labelling"] = dict(miniature_config["labelling"], prompt=miniature_config["labelling"]["prompt"] + "\n")
    second = run_labelling(miniature, changed, sample, tmp_path / "w", tmp_path / "b.parquet", 40)
    log = second.stdout.read()
    assert second.wait(timeout=300) == 0
    assert "0 reused" in log


def test_miniature_labels_agree_with_ground_truth(miniature):
    labels = pq.read_table(miniature / "results" / "labels" / "llm_labels.parquet")
    truth = pa.concat_tables(pq.read_table(p) for p in sorted((miniature / "data" / "fixture_truth").glob("*.parquet")))
    from sklearn.metrics import cohen_kappa_score

    is_medical = dict(zip(truth.column("id").to_pylist(), truth.column("is_medical").to_pylist()))
    y_true = [int(is_medical[i]) for i in labels.column("id").to_pylist()]
    y_pred = labels.column("label").to_pylist()
    assert 0 < sum(y_pred) < len(y_pred), "both classes present"
    kappa = cohen_kappa_score(y_true, y_pred)
    assert kappa >= 0.6
    report = json.loads((miniature / "results" / "labels" / "fixture_label_agreement.json").read_text())
    assert report["cohen_kappa"] == pytest.approx(kappa)
    # the labelled output records the labeller and the prompt
    assert set(labels.column("model").to_pylist()) == {"tiny-mixtral-instruct"}
    assert len(set(labels.column("prompt_sha256").to_pylist())) == 1
    # and, per document, the prompt it was labelled from: one rendered prompt per distinct text
    sample = pq.read_table(miniature / "results" / "labels" / "sample.parquet", columns=["id", "text"])
    text = dict(zip(sample.column("id").to_pylist(), sample.column("text").to_pylist()))
    rendered = dict(zip(labels.column("id").to_pylist(), labels.column("rendered_prompt_sha256").to_pylist()))
    assert len(set(rendered.values())) == len({text[i] for i in rendered})
    scores = np.array(labels.column("score").to_pylist())
    assert ((scores >= 0) & (scores <= 1)).all()
