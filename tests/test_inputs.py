"""Pinned inputs (definemed/inputs.py, rules/inputs.smk, scripts/lock_inputs.py): the paper config
as committed refuses a real run; the lock command against a stand-in Hub on loopback pins every
input and the run then plans every shard; only the Hub fetch rules may reach the network."""

import hashlib
import io
import json
import os
import re
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import BIN, REPO, copy_repo, snakemake

from definemed.config import load
from definemed.inputs import OFFLINE_ENV, hub_inputs, is_commit, lm_eval_datasets
from definemed.paper.reproduction import corpus_note, render
from definemed.plan import parse_dry_run
from tests.support.servers.hub_server import HubServer

PAPER = load(REPO / "config.yaml")
ONLINE = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENV}


def parquet_bytes(rows: int, seed: int) -> bytes:
    table = pa.table(
        {"id": [f"doc-{seed}-{i}" for i in range(rows)], "text": [f"Text {seed} {i}" for i in range(rows)]}
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


# openai/MMMLU as the Hub serves it (a dataset card declaring its configs, CSV files), tiny: what
# `datasets.load_dataset` reads for lm-eval's shipped mmmlu_de_de_* tasks.
TINY_MMMLU = {
    "README.md": b"---\nconfigs:\n- config_name: DE_DE\n  data_files:\n  - split: test\n"
    b"    path: test/mmlu_DE-DE.csv\n---\nMMMLU, tiny\n",
    "test/mmlu_DE-DE.csv": b"Question,A,B,C,D,Answer,Subject\n"
    b"Wo liegt die Leber?,oben rechts,oben links,unten rechts,unten links,A,anatomy\n"
    b"Wie viele Rippenpaare?,10,11,12,13,C,anatomy\n"
    b"Was misst ein EKG?,Druck,Strom,Fluss,Temperatur,B,clinical_knowledge\n",
}


def stand_in_hub() -> HubServer:
    """Every repository config.yaml and lm-eval's tasks name, tiny: a model repo of config and
    weights, FineWeb2 with five German train files (and a test file that is not train)."""
    tiny_model = {"config.json": b'{"model_type": "mistral"}', "model.safetensors": b"\0" * 64}
    models = {i.repo: tiny_model for i in hub_inputs(PAPER) if i.repo_type == "model"}
    fineweb = {f"data/deu_Latn/train/000_{i:05d}.parquet": parquet_bytes(3 + i, i) for i in range(5)}
    fineweb["data/deu_Latn/test/000_00000.parquet"] = parquet_bytes(2, 99)
    fineweb["data/fra_Latn/train/000_00000.parquet"] = parquet_bytes(2, 98)
    datasets = {i.repo: {"README.md": b"tiny"} for i in hub_inputs(PAPER) if i.repo_type == "dataset"}
    datasets[PAPER["fineweb"]["repo"]] = fineweb
    for repo in ["cais/mmlu", "allenai/ai2_arc", "openai/gsm8k", "Rowan/hellaswag"]:
        datasets[repo] = {"README.md": b"tiny"}
    datasets["openai/MMMLU"] = TINY_MMMLU
    commits = {i.repo: [i.revision] for i in hub_inputs(PAPER) if is_commit(i.revision)}
    return HubServer(models=models, datasets=datasets, commits=commits)


def test_paper_config_as_committed_refuses_a_real_run_but_plans_a_dry_run(tmp_path):
    work = copy_repo(tmp_path)
    proc = snakemake(work, "--cores", "1", "results/inputs.json", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "nothing was submitted" in out and "make lock" in out
    assert out.count("the paper run reads inputs that are not pinned") == 1, out  # said once
    assert "data/fineweb2-deu_Latn.manifest.tsv is partial" in out
    for unpinned in ["models.biomistral-7b-slerp", "medqa_de.hub.revision", "medalpaca.hub.revision"]:
        assert unpinned in out
    for key, task in PAPER["benchmarks"]["tasks"].items():
        if task["data"] == "hub":
            assert f"benchmarks.tasks.{key}:" in out
    assert "Execute" not in out and not (work / "results/inputs.json").exists()  # no job started
    dry = snakemake(work, "-n", "results/inputs.json")
    out = dry.stdout + dry.stderr
    # a dry run plans offline, with the warning, once
    assert out.count("the paper run reads inputs that are not pinned") == 1, out
    assert "nothing was submitted" not in out and "a real run would refuse to start" in out


@pytest.mark.parametrize(
    "change,named",
    [
        ({"revision": "no-such-branch"}, "revision 'no-such-branch' of model mistralai/Mixtral-8x7B-Instruct-v0.1"),
        ({"repo": "nobody/no-such-model"}, "model repository nobody/no-such-model"),
    ],
    ids=["unknown-revision", "unknown-repository"],
)
def test_lock_names_the_config_key_and_repository_the_hub_does_not_have(tmp_path, change, named):
    """`make lock` with a revision or repository the Hub does not know: one message naming the
    config key, the repository and what to do, no traceback, nothing written (stand-in Hub)."""
    text = (REPO / "config.yaml").read_text()
    model = "mixtral-8x7b-instruct-v0.1"
    hub = PAPER["models"][model]["hub"]
    old = f"hub: {{repo: {hub['repo']}, revision: {hub['revision']}}}"
    new = f"hub: {{repo: {change.get('repo', hub['repo'])}, revision: {change.get('revision', hub['revision'])}}}"
    assert text.count(old) == 1
    (tmp_path / "config.yaml").write_text(text.replace(old, new))
    with stand_in_hub() as server:
        env = dict(ONLINE, HF_ENDPOINT=server.url, HF_HOME=str(tmp_path / "hf-home"))
        cmd = [sys.executable, "scripts/lock_inputs.py", "--configfile", str(tmp_path / "config.yaml")]
        proc = subprocess.run([*cmd, "--lock", str(tmp_path / "lock.yaml")], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"models.{model}.hub.revision: " in proc.stderr and named in proc.stderr, proc.stderr
    assert "make lock again" in proc.stderr and not (tmp_path / "lock.yaml").exists()


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    """A copy of the repository locked against the stand-in Hub with `scripts/lock_inputs.py`."""
    work = copy_repo(tmp_path_factory.mktemp("locked"))
    with stand_in_hub() as hub:
        env = dict(ONLINE, HF_ENDPOINT=hub.url, HF_HOME=str(work / "hf-home"))
        proc = subprocess.run(
            [sys.executable, "scripts/lock_inputs.py"], cwd=work, env=env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        yield work, hub, env


def test_lock_pins_every_input_and_lists_every_fineweb_file(locked):
    work, hub, _ = locked
    lock = yaml.safe_load((work / "inputs.lock.yaml").read_text())
    for item in hub_inputs(PAPER):
        entry = lock[item.section][item.key]
        assert entry["repo"] == item.repo and is_commit(entry["revision"])
        if is_commit(item.revision):  # config's own pins are confirmed, not replaced
            assert entry["revision"] == item.revision
        else:
            assert entry["revision"] == hub.sha(item.repo_type, item.repo)
    manifest = (work / PAPER["fineweb"]["manifest"]).read_text().splitlines()
    rows = [line.split("\t") for line in manifest if not line.startswith("#")][1:]
    assert [r[0] for r in rows] == [f"train-000_{i:05d}" for i in range(5)]  # train only, deu_Latn only
    fineweb = hub.repos[("dataset", PAPER["fineweb"]["repo"])].files
    for _shard, path, size, sha in rows:
        assert int(size) == len(fineweb[path]) and sha == hashlib.sha256(fineweb[path]).hexdigest()
    assert lock["datasets"]["fineweb"]["files"] == 5
    # Table 11's MMLU column: lm-eval's group mmmlu_de_de, 57 subjects filtered from one config
    assert lock["lm_eval"]["tasks"]["mmmlu_de_de"] == ["openai/MMMLU"]
    assert [c["name"] for c in lock["lm_eval"]["datasets"]["openai/MMMLU"]["configs"]] == ["DE_DE"]
    assert "cais/mmlu" not in lock["lm_eval"]["datasets"]  # English MMLU is no column of the run


def test_with_the_lock_the_run_plans_every_shard_and_starts(locked):
    work, hub, env = locked
    dry = snakemake(work, "-n", "--forceall", "results/finemed/statistics.json")
    assert "not pinned" not in dry.stdout + dry.stderr
    planned = re.findall(r"wildcards: shard=(\S+)", dry.stdout)
    assert {f"train-000_{i:05d}" for i in range(5)} <= set(planned)
    snakemake(work, "--cores", "1", "results/inputs.json")  # not refused
    # the download rule fetches a shard from the stand-in at the lock's commit and verifies it
    proc = subprocess.run(
        [str(BIN / "snakemake"), "--cores", "1", "data/fineweb2/train-000_00002.parquet"],
        cwd=work, env=dict(env, HF_HUB_OFFLINE="1", PATH=f"{BIN}{os.pathsep}{env['PATH']}"),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert pq.read_table(work / "data/fineweb2/train-000_00002.parquet").num_rows == 5


def test_an_lm_eval_dataset_is_fetched_at_its_commit_and_read_offline_by_the_benchmark_task(locked):
    """fetch_lm_eval_dataset downloads openai/MMMLU from the stand-in at the lock's commit into the
    project-local cache; lm-eval's shipped task then loads it there with the offline switches set,
    without a request (as a benchmark job does: same task, same `datasets.load_dataset` call)."""
    work, hub, env = locked
    lock = yaml.safe_load((work / "inputs.lock.yaml").read_text())
    sha = lock["lm_eval"]["datasets"]["openai/MMMLU"]["revision"]
    assert sha == hub.sha("dataset", "openai/MMMLU")
    proc = subprocess.run(
        [str(BIN / "snakemake"), "--cores", "1", "data/lm_eval/openai--MMMLU.json"],
        cwd=work, env=dict(env, PATH=f"{BIN}{os.pathsep}{env['PATH']}"), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = yaml.safe_load((work / "data/lm_eval/openai--MMMLU.json").read_text())
    assert record["revision"] == sha and record["configs"] == [{"name": "DE_DE", "rows": {"test": 3}}]
    cache = work / "work/huggingface/datasets"
    assert (cache / f"openai___mmmlu/DE_DE/0.0.0/{sha}").is_dir()  # the cache is keyed by the commit
    served = len(hub.requests)
    load_task = (
        "from lm_eval.tasks import TaskManager;"
        "from definemed.evaluation.benchmarks import shipped_task_yaml;"
        "tm = TaskManager(include_defaults=False, include_path=str(shipped_task_yaml(%r).parent));"
        "task = tm.load([%r])['tasks'][%r];"
        "print('docs', len(list(task.test_docs())))"
    ) % (("mmmlu_de_de_anatomy",) * 3)
    offline = dict(env, **OFFLINE_ENV, HF_DATASETS_CACHE=str(cache), HF_HUB_CACHE=str(work / "work/huggingface/hub"))
    proc = subprocess.run(
        [sys.executable, "-c", load_task], cwd=REPO, env=offline, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "docs 2" in proc.stdout  # the two anatomy questions of the fetched file
    assert len(hub.requests) == served


def test_a_subset_is_explicit_and_recorded(locked, tmp_path):
    work, _, _ = locked
    config = yaml.safe_load((work / "config.yaml").read_text())
    config["fineweb"]["shard_subset"] = 2
    (work / "trial.yaml").write_text(yaml.safe_dump(config))
    snakemake(work, "--configfile", "trial.yaml", "--cores", "1", "--forceall", "results/inputs.json")
    record = yaml.safe_load((work / "results/inputs.json").read_text())
    assert record["fineweb_files"] == {
        "manifest": PAPER["fineweb"]["manifest"],
        "listed": 5,
        "read": 2,
        "shard_subset": 2,
    }
    # the reproduction report says so up front (rules/paper.smk passes it results/inputs.json)
    report = render({}, False, 2, 0.05, {}, corpus=corpus_note(record))
    assert "this run read 2 of the 5 FineWeb2 files" in report and "shard_subset: 2" in report
    full = dict(record, fineweb_files=dict(record["fineweb_files"], read=5, shard_subset=None))
    assert "subset" not in render({}, False, 2, 0.05, {}, corpus=corpus_note(full))


# A Snakefile that includes the workflow and writes, after parsing, the rules that run on the
# submit host (Snakemake's `localrules` set, which `Workflow.is_local` reads: a dry run never prints
# `localrule`) and the Hub's offline switches in the environment of the Snakemake process (which
# local jobs inherit, and which every Slurm job's own Snakemake sets again when it parses the
# workflow).
PLACEMENT_PROBE = """include: "Snakefile"


import json

from definemed.inputs import OFFLINE_ENV

json.dump(
    {"local": sorted(workflow._localrules), "env": {k: os.environ.get(k) for k in OFFLINE_ENV}},
    open("placement.json", "w"),
)
"""


def test_in_the_paper_dag_only_fetch_rules_reach_the_hub_and_network_rules_run_where_the_network_is(locked):
    """The locked paper DAG through the Slurm profile (dry run, every job printed with its shell
    command and resources): only the Hub fetch rules lift the offline switches, every other job
    runs with them set; the network rules run on the submit host, or in the site's fetch partition."""
    work, _, _ = locked
    (work / "placement.smk").write_text(PLACEMENT_PROBE)
    plan = [
        "all",
        "-s",
        "placement.smk",
        "-n",
        "-p",
        "--forceall",
        "--profile",
        "profiles/slurm",
        "--sdm",
        "env-modules",
    ]
    proc = snakemake(work, *plan)
    jobs = re.findall(r"^rule (\w+):\n(.*?)(?=^\[|\Z)", proc.stdout, re.S | re.M)
    rules = {rule for rule, _ in jobs}
    assert {"train_cpt", "benchmark_medical", "score_shard", "label_documents"} <= rules  # the paper DAG
    locked_datasets = yaml.safe_load((work / "inputs.lock.yaml").read_text())["lm_eval"]["datasets"]
    assert sum(rule == "fetch_lm_eval_dataset" for rule, _ in jobs) == len(locked_datasets) == 4  # one per dataset
    online = {rule for rule, body in jobs if "env -u HF_HUB_OFFLINE" in body}
    hub_fetch = {"fetch_model", "download_fineweb_shard", "sample_medqa", "fetch_medalpaca", "fetch_lm_eval_dataset"}
    assert online == hub_fetch
    placement = json.loads((work / "placement.json").read_text())
    assert placement["env"] == OFFLINE_ENV  # what every job that does not lift them runs with
    api = {"translate_medqa", "translate_medalpaca", "judge_pairwise", "judge_failure_modes"}
    small = {f"table{k}" for k in (2, 3, 5, 6, 7, 8, 10)} | {"benchmark_table", "reproduction_report", "rulegraph"}
    small |= {f"figure{k}" for k in (1, 2, 3, 4, 5)} | {"evaluate_labels", "false_positive_sheet"}
    small |= {"judge_cost_estimate", "pairwise_winrate", "failure_mode_counts", "model_effects"}
    assert set(placement["local"]) == hub_fetch | api | small  # the Snakefile's small CPU jobs stay local
    # with a fetch partition, the network rules are Slurm jobs there instead
    env = dict(os.environ, DEFINEMED_SLURM_FETCH_PARTITION="transfer", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(
        [str(BIN / "snakemake"), *plan], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert set(json.loads((work / "placement.json").read_text())["local"]) == small
    in_transfer = {j["rule"] for j in parse_dry_run(proc.stdout) if j["resources"].get("slurm_partition") == "transfer"}
    assert in_transfer == hub_fetch | api


def test_a_job_with_the_offline_switches_fails_without_reaching_the_hub(tmp_path):
    """What every job but the fetch rules runs with: a Hub download fails loudly, no request sent."""
    with stand_in_hub() as hub:
        env = dict(ONLINE, **OFFLINE_ENV, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"))
        repo = PAPER["models"]["qwen2.5-7b-instruct"]["hub"]
        proc = subprocess.run(
            [sys.executable, "scripts/fetch_model.py", "--name", "q", "--repo", repo["repo"], "--revision",
             repo["revision"], "--out", str(tmp_path / "q")],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode != 0 and "offline" in proc.stderr.lower()
        assert hub.requests == []
        # the same command with the switches lifted (a fetch rule) downloads from the stand-in
        proc = subprocess.run(
            ["env", *[f"-u{k}" for k in OFFLINE_ENV], sys.executable, "scripts/fetch_model.py", "--name", "q",
             "--repo", repo["repo"], "--revision", repo["revision"], "--out", str(tmp_path / "q")],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert hub.requests and (tmp_path / "q" / "config.json").exists()


def test_lm_eval_datasets_of_the_paper_tasks():
    """From lm-eval's own task index, offline: groups and tags expand to every leaf task."""
    from lm_eval.tasks import TaskManager

    index = TaskManager().task_index
    arc = lm_eval_datasets("arc_challenge", index)
    assert arc == [{"repo": "allenai/ai2_arc", "config": "ARC-Challenge", "kwargs": {}}]
    mmlu = lm_eval_datasets("mmlu", index)
    assert {d["repo"] for d in mmlu} == {"cais/mmlu"} and len(mmlu) == 57
    assert {d["config"] for d in lm_eval_datasets("mmmlu_de_de_anatomy", index)} == {"DE_DE"}
    with pytest.raises(ValueError, match="no task"):
        lm_eval_datasets("no_such_task", index)


def garbled_shard(path):
    """A shard whose footer (what verify_shard reads) is intact but whose data pages are not."""
    table = pa.table({"id": [f"d{i}" for i in range(2000)], "text": [f"Wort {i} " * 20 for i in range(2000)]})
    pq.write_table(table, path, compression="zstd", row_group_size=500)
    data = bytearray(path.read_bytes())
    for i in range(200, len(data) // 2, 7):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def test_a_corrupt_shard_is_refused_with_its_path_by_every_reader(tmp_path):
    from definemed.dataset.corpus import _draw
    from definemed.dataset.fineweb import ShardError, iter_shard_batches, sample_documents

    shard = garbled_shard(tmp_path / "train-000_00007.parquet")
    with pytest.raises(ShardError, match=re.escape(str(shard))):
        sample_documents([shard], 1500, seed=1)
    with pytest.raises(ShardError, match=re.escape(str(shard))):
        list(iter_shard_batches(shard, ["id", "text"], 100))  # scoring, filtering
    scores = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"id": ["d0"], "score": [0.5]}), scores)
    with pytest.raises(ShardError, match=re.escape(str(shard))):
        _draw(None, [shard], [scores], seed=1, lo=0.0, hi=1.0)  # the ablation draw


def test_install_profile_makes_the_named_slurm_profile_work(tmp_path):
    """`make install-profile`, then the design card's literal `snakemake --profile slurm`."""
    home = tmp_path / "home"
    work = copy_repo(tmp_path / "repo")
    env = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env['PATH']}")
    plan = [str(BIN / "snakemake"), "--profile", "slurm", "-n", "--sdm", "env-modules"]  # no conda here
    before = subprocess.run(plan, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    # before: Snakemake finds no profile named slurm (not any other failure), where the target installs it
    assert before.returncode != 0, before.stdout[-2000:]
    assert "profile directory given (slurm), but no profile.yaml (or config.yaml) found" in before.stderr, before.stderr
    assert str(home / ".config/snakemake") in before.stderr, before.stderr
    make = ["make", "install-profile", f"VENV={BIN.parent}"]
    subprocess.run(make, cwd=work, env=env, check=True, capture_output=True)
    assert (home / ".config/snakemake/slurm/profile.yaml").exists()
    proc = subprocess.run(plan, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "slurm_account=" in proc.stdout  # the Slurm profile's default resources
