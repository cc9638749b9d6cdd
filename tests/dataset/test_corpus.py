"""The ablation's token-matched random sample (A.5) and the resumable scoring of shards."""

import json
import os
import shutil
import signal
import subprocess
import time

import pyarrow.parquet as pq
from conftest import BIN, copy_repo
from transformers import AutoTokenizer

from definemed.dataset.corpus import finemed_tokens, sample_key, token_matched_sample


def test_sample_key_is_seeded_and_uniform():
    keys = [sample_key(3, f"doc-{i}") for i in range(5000)]
    assert keys[:3] == [sample_key(3, f"doc-{i}") for i in range(3)]
    assert keys[0] != sample_key(4, "doc-0")
    assert 0.47 < sum(keys) / len(keys) < 0.53


def test_token_matched_sample_reaches_the_target_whatever_the_first_pass(miniature):
    tok = AutoTokenizer.from_pretrained(miniature / "models" / "tiny-qwen2.5-7b-instruct")
    shards = sorted((miniature / "data" / "fineweb2").glob("*.parquet"))
    scores = sorted((miniature / "results" / "scores").glob("*.parquet"))
    target, words = finemed_tokens(tok, sorted((miniature / "results" / "finemed").glob("train-*.parquet")))
    total_words = json.loads((miniature / "results" / "finemed" / "statistics.json").read_text())["FineWeb2-de"][
        "words"
    ]
    a, sa = token_matched_sample(tok, shards, scores, target, words, total_words, seed=5, threshold=0.9, margin=0.3)
    b, sb = token_matched_sample(tok, shards, scores, target, words, total_words, seed=5, threshold=0.9, margin=2.0)
    assert sa["passes"] > 1 and sb["passes"] == 1
    assert a.equals(b)  # the draw does not depend on how many passes it took
    tokens = a.column("tokens").to_pylist()
    assert sum(tokens) >= target > sum(tokens) - tokens[-1]
    assert sa["medical_share"] == sum(s >= 0.9 for s in a.column("score").to_pylist()) / a.num_rows
    c, _ = token_matched_sample(tok, shards, scores, target, words, total_words, seed=6, threshold=0.9)
    assert set(a.column("id").to_pylist()) != set(c.column("id").to_pylist())


def test_killed_scoring_recomputes_only_unfinished_shards(miniature, tmp_path):
    work = copy_repo(tmp_path / "run")
    shutil.copytree(miniature, work / "miniature", symlinks=True)
    scores = sorted((work / "miniature" / "results" / "scores").glob("*.parquet"))
    logs = work / "miniature" / "logs" / "scores"
    for s in scores:
        s.unlink()
        (logs / f"{s.stem}.log").unlink()
    targets = [str(s.relative_to(work)) for s in scores]
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    cmd = [str(BIN / "snakemake"), "--profile", "profiles/miniature", "--cores", "1", *targets]
    proc = subprocess.Popen(
        cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 300
    # kill once the second job has started: the first is then finished and recorded as such
    while len(list(logs.glob("*.log"))) < 2:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {s: s.stat().st_mtime_ns for s in scores if s.exists()}
    assert 1 <= len(done) < len(scores)
    dry = subprocess.run(cmd + ["-n", "--quiet", "rules"], cwd=work, env=env, capture_output=True, text=True)
    assert f"score_shard {len(scores) - len(done)}" in " ".join(dry.stdout.split()), dry.stdout
    # a killed Snakemake leaves its lock behind; a user unlocks, then reruns
    subprocess.run(cmd + ["--unlock"], cwd=work, env=env, check=True, capture_output=True)
    rerun = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert all(s.exists() for s in scores)
    assert all(s.stat().st_mtime_ns == m for s, m in done.items())  # finished shards were not recomputed
    assert pq.read_table(scores[-1]).num_rows > 0
