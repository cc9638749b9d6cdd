"""The Slurm profile: the sbatch arguments of the paper run, and a part of the miniature run
through a real single-node Slurm cluster (scripts/install_slurm.sh) with accounting."""

import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import BIN, REPO, copy_repo, skip_or_fail

from definemed.plan import gpus_per_node, parse_dry_run

SITE = {"DEFINEMED_SLURM_ACCOUNT": "definemed", "DEFINEMED_SLURM_PARTITION": "gpu"}


class Resources(dict):
    """job.resources as the plugin reads it: .get() and attribute access."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError as e:
            raise AttributeError(key) from e


def sbatch_call(job: dict) -> str:
    """The sbatch command line snakemake-executor-plugin-slurm builds for one dry-run job."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    res = Resources({k: v for k, v in job["resources"].items() if v != ""})
    fake = SimpleNamespace(resources=res, threads=res.get("_cores", 1), name=job["rule"])
    params = {
        "run_uuid": "uuid",
        "slurm_logfile": "log",
        "comment_str": f"rule_{job['rule']}",
        "account": f" -A {res['slurm_account']}",
        "partition": f" -p {res['slurm_partition']}",
        "workdir": "",
    }
    settings = SimpleNamespace(requeue=False, no_requeue=False, qos=None, reservation=None)
    return get_submit_command(fake, params, settings=settings) + set_gres_string(fake)


def arg(call: str, flag: str):
    m = re.search(rf"(?:^|\s){re.escape(flag)}[= ](\S+)", call)
    return m.group(1) if m else None


@pytest.fixture(scope="module")
def paper_jobs():
    proc = subprocess.run(
        [str(BIN / "snakemake"), "--profile", "profiles/slurm", "-n", "-F", "--sdm", "env-modules"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, **SITE),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = [j for j in parse_dry_run(proc.stdout) if j["rule"] != "all"]
    assert len(jobs) > 50
    return jobs


# An A100 node as the paper's clusters have them (Karolina: 8 x A100-40GB, 128 cores, 1 TB;
# Leonardo: 4 x A100-64GB, 32 cores, 512 GB) and a 24 h partition limit.
A100_NODES = {8: {"cpus": 128, "mem_mb": 1_000_000}, 4: {"cpus": 32, "mem_mb": 512_000}}


def test_paper_run_sbatch_arguments(paper_jobs):
    calls = {}
    for job in paper_jobs:
        call = sbatch_call(job)
        calls.setdefault(job["rule"], []).append((job, call))
        assert arg(call, "-A") == "definemed" and arg(call, "-p") == "gpu", call
        assert 1 <= int(arg(call, "-t")) <= 1440, call
        assert "--gpus" not in call, call  # GPUs per node via --gres, never a job total
        assert "--ntasks-per-gpu" not in call, call
        gpus = gpus_per_node(job["resources"])
        if gpus:
            assert arg(call, "--gres") == f"gpu:a100:{gpus}", call
            node = A100_NODES[4 if gpus == 4 and job["rule"] == "train_cpt" else 8]
            assert int(arg(call, "--cpus-per-task")) <= node["cpus"], call
            assert int(arg(call, "--mem")) <= node["mem_mb"], call
        else:
            assert arg(call, "--gres") is None, call
            assert arg(call, "--nodes") in (None, "1"), call
    # labelling: one node, Mixtral-8x7B over 4 GPUs (tensor parallel)
    ((_, label),) = calls["label_documents"]
    assert arg(label, "--gres") == "gpu:a100:4" and arg(label, "--nodes") == "1"
    # scoring: one GPU per shard job
    assert len(calls["score_shard"]) == 30
    assert all(arg(c, "--gres") == "gpu:a100:1" and arg(c, "--nodes") == "1" for _, c in calls["score_shard"])
    # CPT: one task per node (the mpi route), 8 GPUs per Karolina node, 4 per Leonardo node
    cpt = {j["wildcards"]: (j, c) for j, c in calls["train_cpt"]}
    job, call = cpt["run=definemed-qwen2.5-7b"]
    assert job["resources"]["mpi"] == "srun"
    assert (arg(call, "--nodes"), arg(call, "--ntasks"), arg(call, "--gres")) == ("8", "8", "gpu:a100:8")
    assert arg(call, "-t") == "1440"  # 72 h of training as resumed 24 h jobs
    job, call = cpt["run=definemed-mistral-small-24b"]
    assert (arg(call, "--nodes"), arg(call, "--ntasks"), arg(call, "--gres")) == ("32", "32", "gpu:a100:4")
    assert arg(call, "--cpus-per-task") == "32"
    # merges: CPU only, one node
    assert all(arg(c, "--gres") is None for _, c in calls["merge_slerp"])
    # generation: the 24B family tensor parallel on 2 GPUs of one node (generation.tensor_parallel)
    gen = {j["wildcards"]: c for j, c in calls["generate_responses"]}
    assert arg(gen["model=definemed-mistral-small-24b-slerp"], "--gres") == "gpu:a100:2"
    assert arg(gen["model=mistral-small-24b-instruct-2501"], "--gres") == "gpu:a100:2"
    assert arg(gen["model=qwen2.5-7b-instruct"], "--gres") == "gpu:a100:1"


def test_site_overrides(paper_jobs):
    """GPU model and time limit come from the environment (one place for a site)."""
    env = dict(os.environ, **SITE, DEFINEMED_SLURM_GPU_MODEL="", DEFINEMED_SLURM_MAX_RUNTIME="2880")
    proc = subprocess.run(
        [str(BIN / "snakemake"), "--profile", "profiles/slurm", "-n", "-F", "--sdm", "env-modules"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    cpt = [j for j in parse_dry_run(proc.stdout) if j["rule"] == "train_cpt"]
    assert {j["resources"]["gres"] for j in cpt} == {"gpu:8", "gpu:4"}
    assert {j["resources"]["runtime"] for j in cpt} == {2880}


def test_plan_command():
    proc = subprocess.run(
        [sys.executable, "scripts/plan_run.py"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    judge = re.search(r"^judge cost: ([\d.]+) USD \((.*)\)$", out, re.M)
    assert judge and 10 < float(judge.group(1)) < 100, out  # every planned judge call, priced
    assert "pairwise: 15000 calls to gpt-4.1-mini" in judge.group(2) and "medqa_translation: 500 calls" in judge.group(
        2
    )
    row = re.search(r"^train_cpt\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$", out, re.M)
    assert row, out
    # Table 8: Mistral-7B 64 GPUs x 72 h, the two Qwen2.5-7B runs 64 x 64 h, the 24B 128 x 48 h
    assert int(row.group(1)) == 4 and float(row.group(5)) == 64 * 72 + 2 * 64 * 64 + 128 * 48
    assert int(row.group(2)) == 3 * 3 + 2  # 24 h submissions
    assert re.search(r"definemed-mistral-small-24b\s+128\s+48\s+6144\s+128\s+48\s+6144", out), out
    assert re.search(r"definemed-qwen2.5-7b\s+64\s+64\s+4096\s+64\s+64\s+4096", out), out
    # per CPT run: memory per GPU against the declared GPU memory (GiB), checkpoint disk (GB); the
    # Qwen2.5-7B runs are tight on an A100's 40 GiB (definemed/plan.py TIGHT_SHARE)
    assert re.search(r"^  definemed-qwen2.5-7b\s+64 hybrid/8\s+7.62B .* 40  TIGHT\s+91\s+\d+$", out, re.M), out
    assert "TIGHT: definemed-qwen2.5-7b, fineweb2-qwen2.5-7b" in out
    assert re.search(r"^  definemed-mistral-small-24b\s+128 full/128\s+23.57B .* 64  yes\s+283\s+\d+$", out, re.M), out


# -- a real Slurm cluster ----------------------------------------------------------------------


def on_slurm_host() -> bool:
    return platform.system() == "Linux" and os.geteuid() == 0 and shutil.which("apt-get") is not None


@pytest.fixture(scope="session")
def slurm_host():
    """A single-node Slurm cluster needs Linux with apt-get and root (scripts/install_slurm.sh, which
    .ci/run runs first): elsewhere the test skips, in CI (`CI` set) it fails. Session-scoped and
    listed before `miniature`, so a machine without Slurm skips before the miniature runs."""
    if not on_slurm_host():
        skip_or_fail("a single-node Slurm cluster needs Debian and root (scripts/install_slurm.sh)")


RUN = "definemed-tiny-qwen2.5-7b"
INPUTS = [  # finished miniature outputs the part below starts from
    "data/fineweb2/train-000_00000.parquet",
    "results/classifier/model",
    "models/tiny-qwen2.5-7b-instruct",
    f"results/packed/{RUN}",
]
TARGETS = [
    "results/scores/train-000_00000.parquet",  # score_shard: 1 GPU
    f"results/cpt/{RUN}/summary.json",  # train_cpt: 2 launcher tasks, stalled, cut to its time limit, resumed
    f"results/merges/{RUN}-slerp/check.json",  # merge_slerp: CPU, after the resumed CPT
]


# attempt 1 of the CPT reaches its checkpoint in under a minute and is cut a minute later; the retry
# and the merge take a few minutes more (5:20 in all on a quiet 2-core machine)
TIMEOUT_S = 1500


def submitted_jobs(work: Path, log: str) -> list[str]:
    """The Slurm job ids this run submitted: from Snakemake's log and the plugin's log folder."""
    ids = set(re.findall(r"submitted with SLURM jobid (\d+)", log))
    ids |= {f.stem for f in (work / ".snakemake/slurm_logs").rglob("*.log") if f.stem.isdigit()}
    return sorted(ids, key=int)


def stop_run(proc: subprocess.Popen, work: Path, log: Path) -> list[str]:
    """Stop what the test started: its Snakemake (by pid: SIGTERM, then SIGKILL) and its Slurm
    jobs (scancel, by id). Returns the cancelled job ids."""
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    jobs = submitted_jobs(work, log.read_text())
    if jobs:
        subprocess.run(["scancel", *jobs], check=False, timeout=60)
    return jobs


def still_training(pid: int) -> bool:
    """Whether process `pid` exists and is a CPT training process (not a later process given the pid)."""
    try:
        return b"train_cpt.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def sacct(job_ids):
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-j", ",".join(job_ids), "-o", "JobID,State,AllocTRES,Elapsed"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split("|")[0]: line.split("|")[1:] for line in out.splitlines() if line}


class SlurmPart:
    """`snakemake --profile profiles/slurm` on a part of the finished miniature (INPUTS -> TARGETS) in
    a scratch copy, in the background: conftest starts it as soon as the miniature exists, so its
    minutes of Slurm waiting overlap the other slow tests; the test joins it last."""

    def __init__(self, miniature: Path):
        subprocess.run(
            ["bash", str(REPO / "scripts/install_slurm.sh")], check=True, timeout=900, stdin=subprocess.DEVNULL
        )
        self.work = copy_repo(Path(tempfile.mkdtemp(prefix="slurm-part-")) / "repo")
        for rel in INPUTS:
            src, dst = miniature / rel, self.work / "miniature" / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
        args = ["--profile", "profiles/slurm", "--configfile", "config/miniature.yaml"]
        args += ["tests/support/overlays/slurm_overlay.yaml"]
        args += ["--replace-workflow-config", "--sdm", "env-modules"]  # no conda: the CPU venv runs the jobs
        args += ["--jobs", "3", "--latency-wait", "10"]
        # no --retries: the profile's own `retries` resubmit the CPT after its TIMEOUT; the copied
        # inputs are taken as they are, not rebuilt
        args += ["--allowed-rules", "score_shard", "train_cpt", "merge_slerp"]
        args += ["--slurm-init-seconds-before-status-checks", "5", "--slurm-keep-successful-logs"]
        env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **SITE)
        self.log = self.work.parent / "snakemake.log"
        self.started = time.monotonic()
        with open(self.log, "w") as log:  # a file, not a pipe nobody reads for minutes
            self.proc = subprocess.Popen(
                [str(BIN / "snakemake"), *args, *[f"miniature/{t}" for t in TARGETS]],
                cwd=self.work,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )

    def join(self) -> tuple[int, str, float]:
        """Snakemake's exit code, output and seconds; stopped (and pytest failed) past TIMEOUT_S."""
        try:
            code = self.proc.wait(timeout=max(1, TIMEOUT_S - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            cancelled = self.stop()
            pytest.fail(
                f"snakemake through Slurm did not finish in {TIMEOUT_S} s: stopped it (pid {self.proc.pid}) "
                f"and cancelled its Slurm jobs {cancelled}\n{self.log.read_text()[-6000:]}"
            )
        return code, self.log.read_text(), time.monotonic() - self.started

    def stop(self) -> list[str]:
        if self.proc.poll() is not None:
            return []
        return stop_run(self.proc, self.work, self.log)


def start_slurm_part(miniature: Path) -> SlurmPart | None:
    return SlurmPart(miniature) if on_slurm_host() else None


@pytest.mark.start_with_miniature(start=start_slurm_part)
def test_miniature_part_through_slurm(slurm_host, started, capsys):
    part = started
    try:
        code, log, elapsed = part.join()
    finally:
        part.stop()
    work = part.work
    print(f"snakemake through Slurm: {elapsed:.0f} s\n{log[-6000:]}")
    assert code == 0, log[-6000:]
    for t in TARGETS:
        assert (work / "miniature" / t).exists(), t

    # every Slurm job of the run, by rule, from the plugin's log directory
    jobs = {}
    for f in (work / ".snakemake/slurm_logs").rglob("*.log"):
        rule = f.relative_to(work / ".snakemake/slurm_logs").parts[0].removeprefix("rule_")
        jobs.setdefault(rule, []).append(f.stem)
    assert set(jobs) == {"score_shard", "train_cpt", "merge_slerp"}, jobs
    states = sacct([i for ids in jobs.values() for i in ids])
    with capsys.disabled():  # into CI's log even when the test passes: what Slurm ran, and how it ended
        print(f"\nSlurm jobs of the miniature part ({elapsed:.0f} s through snakemake --profile profiles/slurm):")
        for rule, ids in sorted(jobs.items()):
            for i in sorted(ids, key=int):
                print(f"  {rule:12s} job {i:>5s}  {' '.join(states[i])}")
        print("\n".join(line for line in log.splitlines() if "submitted with SLURM jobid" in line))
    for rule, ids in jobs.items():
        final = max(ids, key=int)
        assert states[final][0] == "COMPLETED", (rule, states[final])
        for i in ids:
            if i != final:  # only the CPT may have been retried, and only after its time limit
                assert rule == "train_cpt" and states[i][0] == "TIMEOUT", (rule, i, states[i])
    assert "gres/gpu=1" in states[jobs["score_shard"][0]][1]
    # the CPT: killed at its time limit at least once, resumed from a checkpoint, then completed
    cpt_ids = sorted(jobs["train_cpt"], key=int)
    # exactly two attempts: the first stalled (Snakemake attempt 1), the retry trained to the end
    assert len(cpt_ids) == 2 and states[cpt_ids[0]][0] == "TIMEOUT", states
    # its first attempt stalled on both ranks after its first checkpoint
    # (tests/support/harnesses/stall_callback.py, set in the overlay's cpt.callbacks), Slurm ended
    # those processes at the time limit, and the retry resumed from that checkpoint
    stalled = {f.name: int(f.read_text()) for f in (work / "miniature/work/cpt" / RUN).glob("stalled-*.pid")}
    assert set(stalled) == {"stalled-0.pid", "stalled-1.pid"}, stalled
    assert not [pid for pid in stalled.values() if still_training(pid)], "Slurm left the stalled attempt"
    save_steps = yaml.safe_load((REPO / "tests/support/overlays/slurm_overlay.yaml").read_text())["cpt"]["save_steps"]
    summary = json.loads((work / "miniature/results/cpt" / RUN / "summary.json").read_text())
    history = (work / "miniature/work/cpt" / RUN / "history.jsonl").read_text().splitlines()
    starts = [json.loads(line)["resumed_from"] for line in history]
    assert starts[0] is None and starts[-1] and Path(starts[-1]).name == f"checkpoint-{save_steps}", starts
    assert summary["world_size"] == 2 and summary["steps"] == summary["planned_steps"], summary
    (first,) = (work / ".snakemake/slurm_logs/rule_train_cpt").rglob(f"{cpt_ids[0]}.log")
    first_log = first.read_text()
    assert "DUE TO TIME LIMIT" in first_log, first_log[-2000:]
    cpt_log = (work / "miniature/logs/cpt" / f"{RUN}.log").read_text()
    assert "machine 1 of 2" in cpt_log and "machine 0 of 2" in cpt_log, cpt_log[-3000:]


def test_save_before_time_limit_in_a_slurm_job(slurm_host, tmp_path):
    """cpt.save_before_time_limit_minutes in a real Slurm job: a CPT with far more steps than fit
    its 3-minute limit, started by scripts/launch_cpt.sh under `sbatch --time=3` with the setting at
    2, writes a complete checkpoint and stops about a minute in (its end less 2 minutes, read from
    Slurm), long before Slurm would kill it: the job ends by itself (not TIMEOUT) and says to rerun.
    About 90 s (a tiny base built in seconds, then the minute of training)."""
    from conftest import build_tiny_cpt_inputs, cpt_job_settings

    from definemed.checkpoints import last_complete_checkpoint

    subprocess.run(["bash", str(REPO / "scripts/install_slurm.sh")], check=True, timeout=900, stdin=subprocess.DEVNULL)
    inputs = build_tiny_cpt_inputs(tmp_path)
    settings = cpt_job_settings(
        epochs=100_000,  # hours of steps: only the time limit ends this run
        effective_batch_sequences=4,
        micro_batch_size=1,
        save_steps=10**9,  # no regular checkpoint: the only one is the time limit's
        warmup_steps=1,
        save_before_time_limit_minutes=2,
        callbacks=[],
    )
    work, out = tmp_path / "work", tmp_path / "out"
    cmd = [str(REPO / "scripts/launch_cpt.sh"), "1", sys.executable, "scripts/train_cpt.py", "--run", "t"]
    cmd += ["--packed", str(inputs / "packed"), "--base", str(inputs / "base"), "--settings", json.dumps(settings)]
    cmd += ["--seed", "0", "--work-dir", str(work), "--threads", "1", "--out", str(out / "model")]
    cmd += ["--out-log", str(out / "log.jsonl"), "--out-summary", str(out / "summary.json")]
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/bash\ncd {REPO}\nexport OMP_NUM_THREADS=1\nexec {' '.join(map(shlex.quote, cmd))}\n")
    job = (
        subprocess.run(
            [
                "sbatch",
                "--parsable",
                "--time=3",
                "-A",
                SITE["DEFINEMED_SLURM_ACCOUNT"],
                "-p",
                SITE["DEFINEMED_SLURM_PARTITION"],
            ]
            + ["--cpus-per-task=1", "--mem=2000", f"--output={tmp_path / 'job.log'}", str(script)],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .split(";")[0]
    )
    try:
        deadline = time.monotonic() + 300  # the 3-minute limit, its queueing and start-up
        while subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout.strip():
            assert time.monotonic() < deadline, f"Slurm job {job} still running after 300 s"
            time.sleep(3)
    finally:
        subprocess.run(["scancel", job], check=False)  # nothing to cancel when it ended
    time.sleep(2)  # accounting catches up
    state, _, elapsed = sacct([job])[job]
    log = (tmp_path / "job.log").read_text()
    assert state.startswith("FAILED"), (state, log[-3000:])  # it stopped by itself, with an error: rerun
    assert "before the time limit; rerun to resume" in log, log[-3000:]
    seconds = sum(int(x) * 60**i for i, x in enumerate(reversed(elapsed.split(":"))))
    assert 55 <= seconds < 150, (elapsed, log[-3000:])  # about a minute in: its end less 2 minutes
    checkpoint = last_complete_checkpoint(work, 1)
    assert checkpoint is not None, sorted(p.name for p in work.iterdir())
    assert not (out / "model").exists()  # no final model from a stopped run


def test_stall_callback_tells_snakemakes_first_attempt_by_its_time_limit(monkeypatch):
    """tests/support/harnesses/stall_callback.py stalls only in Snakemake's attempt 1 of the CPT job,
    which the overlay gives `runtime` minutes and later attempts `retry_runtime`; Slurm's durations
    parse in minutes."""
    import tests.support.harnesses.stall_callback as stall_callback

    assert stall_callback.minutes("00:10:00") == 10 and stall_callback.minutes("20:00") == 20
    assert stall_callback.minutes("1-02:03:30") == 24 * 60 + 2 * 60 + 3.5
    resources = yaml.safe_load((REPO / "tests/support/overlays/slurm_overlay.yaml").read_text())["cpt"]["resources"]
    for limit, first in ((resources["runtime"], True), (resources["retry_runtime"], False)):
        hours, mins = divmod(limit, 60)
        monkeypatch.setattr(stall_callback, "slurm_job", lambda h=hours, m=mins: {"TimeLimit": f"{h:02d}:{m:02d}:00"})
        assert stall_callback.first_attempt() is first, limit
