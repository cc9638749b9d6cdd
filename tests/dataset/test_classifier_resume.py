"""The classifier resumes from its Trainer checkpoints (README, "Time limits"): train_classifier.py
killed (SIGKILL) after a checkpoint and run again with the same work folder ends with the weights,
training log and validation scores of an uninterrupted run. A tiny XLM-RoBERTa of the miniature's
spec is built here in seconds, on fixture documents: no miniature needed."""

import json
import re
import shutil
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import REPO
from safetensors.torch import load_file

from definemed.miniature.fixtures import generate_documents

SETTINGS = {
    "model": "tiny-xlm-roberta",
    "max_length": 64,
    "epochs": 3,
    "batch_size": 8,
    "learning_rate": 5.0e-3,
    "weight_decay": 0.01,
    "validation_fraction": 0.2,
    "fbeta": 0.5,
    "eval_steps": 3,
    "early_stopping_patience": 100,  # the kill, not early stopping, interrupts training
    "max_tokens_per_batch": 2048,
    "threshold": {"rule": "fixed", "value": 0.5},
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_model):
    tmp = tmp_path_factory.mktemp("classifier-inputs")
    shutil.copytree(tiny_model("tiny-xlm-roberta"), tmp / "base")
    docs = generate_documents(1, 240, 0.5, 0.05, stream="classifier-resume-test")
    table = pa.table(
        {
            "id": [f"d{i}" for i in range(len(docs))],
            # a marker word makes the task learnable in a few dozen steps: the test is about resuming
            "text": [("Medizin: " if d["is_medical"] else "Alltag: ") + d["text"] for d in docs],
            "label": [int(d["is_medical"]) for d in docs],
        }
    )
    pq.write_table(table, tmp / "train.parquet")
    return tmp


def train(inputs, work, out):
    cmd = [sys.executable, str(REPO / "scripts" / "train_classifier.py"), "--train", str(inputs / "train.parquet")]
    cmd += ["--base-model", str(inputs / "base"), "--settings", json.dumps(SETTINGS), "--seed", "5"]
    cmd += ["--work-dir", str(work), "--threads", "1", "--out-model", str(out / "model")]
    cmd += ["--out-log", str(out / "log.jsonl"), "--out-validation", str(out / "validation.parquet")]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def first_logged_epoch(output: str) -> float:
    """The epoch of the first training-loss line the Trainer printed (logging_steps is 1 here)."""
    return float(re.search(r"\{'loss': [^}]*'epoch': '([0-9.e-]+)'", output).group(1))


@pytest.mark.slow  # three short training runs
def test_killed_classifier_resumes_to_the_uninterrupted_result(inputs, tmp_path):
    ref = train(inputs, tmp_path / "ref-work", tmp_path / "ref")
    ref_out = ref.stdout.read()
    assert ref.wait(timeout=600) == 0, ref_out[-3000:]

    work = tmp_path / "work"
    proc = train(inputs, work, tmp_path / "run")
    deadline = time.time() + 600
    while not (work / "checkpoint-6" / "trainer_state.json").exists():
        assert proc.poll() is None, "finished or failed before the kill: " + proc.stdout.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "run" / "model").exists()
    steps = json.loads((tmp_path / "ref" / "log.jsonl").read_text().splitlines()[-1]).get("step")
    assert steps and steps > 6, "the reference run must train past the checkpoint the kill leaves"

    resumed = train(inputs, work, tmp_path / "run")
    out = resumed.stdout.read()
    assert resumed.wait(timeout=600) == 0, out[-3000:]
    # it continued: its first logged training step lies past the killed run's checkpoint (steps 1-6
    # are 6/24 of an epoch of 192 fit documents in batches of 8), where a fresh run starts at step 1
    assert first_logged_epoch(ref_out) < 0.05 and first_logged_epoch(out) > 6 / 24, out[-3000:]
    a = load_file(tmp_path / "ref" / "model" / "model.safetensors")
    b = load_file(tmp_path / "run" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from an uninterrupted run"
    assert (tmp_path / "run" / "log.jsonl").read_bytes() == (tmp_path / "ref" / "log.jsonl").read_bytes()
    assert pq.read_table(tmp_path / "run" / "validation.parquet").equals(
        pq.read_table(tmp_path / "ref" / "validation.parquet")
    )
