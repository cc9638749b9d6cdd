"""Chaos: jobs of the finished miniature killed mid-job resume to the uninterrupted run's bytes.

In a scratch copy of the finished miniature (its work/ left out: no checkpoints, no judge cache),
one judge job and one CPT job are forced again, and Snakemake's whole process group is killed
(SIGKILL) during each: the judge after K answers were committed to its cache (a sitecustomize on
PYTHONPATH stalls the judge there, tests/support/overlays/chaos_site/), the CPT once its first
checkpoint is complete on disk (the CPT has ~90 steps left then). Both moments are read from the files, not from the
clock. After `snakemake --unlock` the same command runs again; the test asserts that the kill
landed mid-job (outputs absent, the cache or the steps short of the end), that the rerun resumed
(from the cache: K cached; from the checkpoint: the work folder's history), and that the outputs,
the weights and the cards are byte-identical to the uninterrupted miniature's, with no exclusion
beyond the timing files the README names (definemed.determinism.EXCLUDED).

CI cost: about 60 CPU seconds, so roughly 100 s on a quiet 2-core machine: one CPT of the
miniature's (104 steps, which no kill can make cheaper: the rerun trains what the kill cut short),
six Snakemake starts (two of them --unlock), one merge; the judge part is about 20 s of it.
Measured on a shared 2-core machine (other jobs beside it): 95 s, and 290 s under heavy load. It
runs in a thread from the moment the miniature exists (conftest.in_thread), beside the other slow
tests, and the test joins it last.
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from conftest import copy_repo, in_thread, snakemake, snakemake_command

from definemed.determinism import EXCLUDED, compare_trees, render

PROFILE = ("--profile", "profiles/miniature")
RUN = "definemed-tiny-mistral-7b"  # the miniature's fastest CPT run
K = 20  # judge answers committed before the kill (of 60)
# the forced jobs and what depends on them up to the named outputs; nothing upstream (a miniature
# reused through DEFINEMED_TEST_MINIATURE may be older than the code: only these jobs are compared)
JUDGE_RULES = ("judge_failure_modes", "failure_mode_counts")
CPT_RULES = ("train_cpt", "merge_slerp")


def scratch(miniature: Path, tmp: Path) -> Path:
    work = copy_repo(tmp / "repo")
    shutil.copytree(miniature, work / "miniature", ignore=shutil.ignore_patterns("work"), symlinks=True)
    shutil.copytree(miniature.parent / ".snakemake" / "metadata", work / ".snakemake" / "metadata")
    return work


def start(work: Path, log: Path, *args, **env) -> subprocess.Popen:
    """Snakemake in its own session: its process group holds every job it starts."""
    argv, base_env = snakemake_command(*PROFILE, *args)
    with open(log, "w") as f:
        return subprocess.Popen(
            argv, cwd=work, stdout=f, stderr=subprocess.STDOUT, env={**base_env, **env},
            start_new_session=True,
        )  # fmt: skip


def wait_until(condition, proc: subprocess.Popen, log: Path, timeout: float = 600):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the job ended before the kill:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, log.read_text()[-4000:]
        time.sleep(0.2)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL to Snakemake's process group (Snakemake and its jobs), as `kill -9 -<pgid>`."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while True:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, "processes of the killed group are still running"
        time.sleep(0.1)


def rerun(work: Path, log: Path, *args) -> dict[str, int]:
    """`snakemake --unlock`, then the same command to the end; the jobs it ran (rule -> count)."""
    snakemake(work, *PROFILE, "--unlock")
    proc = start(work, log, *args)
    assert proc.wait(timeout=900) == 0, log.read_text()[-4000:]
    out = log.read_text()
    jobs = {}
    for line in out.split("Job stats:")[1].splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


def cache_rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet, or locked for a moment
        return 0


def assert_same_bytes(miniature: Path, work: Path, scope: list[str]) -> None:
    result = compare_trees(miniature, work / "miniature", scope, EXCLUDED)
    assert result.ok, render(result, miniature, work / "miniature")
    assert result.identical, scope
    assert set(result.excluded) <= {f"results/cpt/{RUN}/training_log.jsonl"}, result.excluded


def killed_and_resumed(miniature: Path, tmp_path: Path) -> None:
    """The test's body, in a thread from the moment the miniature exists (conftest.in_thread): its
    Snakemake runs and the CPT take one core while the other slow tests run one at a time."""
    work = scratch(miniature, tmp_path)
    mini = work / "miniature"

    # --- the judge: killed after K answers were cached, resumed from the cache
    judge_args = (
        # under --sdm conda (CI) Snakemake drops PYTHONPATH from a job's environment unless told
        "--conda-not-block-search-path-envvars",
        "--allowed-rules",
        *JUDGE_RULES,
        "-R",
        JUDGE_RULES[0],
        "--",
        "miniature/results/judges/failure_modes/counts.json",
    )
    cache = mini / "work" / "judges" / "failure_modes.sqlite"
    stalled = tmp_path / "judge-stalled.pid"
    stall = {"PYTHONPATH": f"{work / 'tests' / 'support' / 'overlays' / 'chaos_site'}{os.pathsep}{work}",
             "DEFINEMED_CHAOS_JUDGE_STALL_AFTER": str(K), "DEFINEMED_CHAOS_JUDGE_STALLED": str(stalled)}  # fmt: skip
    proc = start(work, tmp_path / "judge.log", *judge_args, **stall)
    wait_until(lambda: stalled.exists() and cache_rows(cache) >= K, proc, tmp_path / "judge.log")
    kill_group(proc)
    # mid-job: K of 60 answers cached, the job's outputs gone (Snakemake removes them before a job)
    assert cache_rows(cache) == K
    assert not (mini / "results/judges/failure_modes/run.json").exists()
    jobs = rerun(work, tmp_path / "judge-rerun.log", *judge_args)
    assert jobs == dict.fromkeys(JUDGE_RULES, 1), jobs
    assert_same_bytes(miniature, work, ["results/judges/failure_modes"])
    # resumed from the cache: the rerun, the only run that finished, found the K answers there
    history = [json.loads(line) for line in (cache.parent / "failure_modes.history.jsonl").read_text().splitlines()]
    assert len(history) == 1 and history[0]["cached"] == K and history[0]["sent"] == history[0]["unique"] - K, history

    # --- the CPT: killed after its first complete checkpoint, resumed from a checkpoint; its merge
    from definemed.checkpoints import checkpoint_problem

    cpt_args = ("--allowed-rules", *CPT_RULES, "-R", CPT_RULES[0], "--", f"miniature/models/{RUN}-slerp")
    cpt_work = mini / "work" / "cpt" / RUN
    proc = start(work, tmp_path / "cpt.log", *cpt_args)
    first = cpt_work / "checkpoint-10"  # cpt.save_steps of config/miniature.yaml
    wait_until(lambda: first.is_dir() and checkpoint_problem(first) is None, proc, tmp_path / "cpt.log")
    kill_group(proc)
    summary = json.loads((miniature / "results" / "cpt" / RUN / "summary.json").read_text())
    steps = [json.loads(line)["step"] for line in (cpt_work / "throughput.jsonl").read_text().splitlines()]
    assert max(steps) < summary["steps"], "the kill came after the training's end"
    assert not (mini / "models" / RUN).exists() and not (mini / "results" / "cpt" / RUN / "summary.json").exists()
    jobs = rerun(work, tmp_path / "cpt-rerun.log", *cpt_args)
    assert jobs == dict.fromkeys(CPT_RULES, 1), jobs
    assert_same_bytes(
        miniature,
        work,
        [f"models/{RUN}", f"models/{RUN}-slerp", f"results/cpt/{RUN}", f"results/merges/{RUN}-slerp"],
    )
    # resumed from a checkpoint: the work folder's history of the job's two starts
    starts = [json.loads(line)["resumed_from"] for line in (cpt_work / "history.jsonl").read_text().splitlines()]
    assert len(starts) == 2 and starts[0] is None and Path(starts[1]).name.startswith("checkpoint-"), starts
    assert int(Path(starts[1]).name.split("-")[1]) >= 10
    assert "resuming from" in (mini / "logs" / "cpt" / f"{RUN}.log").read_text()


@pytest.mark.start_with_miniature(start=in_thread(killed_and_resumed))
def test_killed_judge_and_cpt_jobs_resume_to_the_uninterrupted_bytes(started):
    started.join(timeout=1800)
