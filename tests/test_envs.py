"""The conda envs of the paper run hold what each rule's job imports, and their locks are current."""

import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import skip_or_fail

from definemed.envs import (
    BACKEND_IMPORTS,
    conda_jobs,
    conda_prefixes,
    file_imports,
    import_distributions,
    locked_digest,
    missing_imports,
    read_env,
    requirement_pins,
    source_digest,
    workflow_rules,
)

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "envs" / "source"
# Envs that take torch, transformers and numpy from vllm's own pins (vllm 0.33.0: torch 2.14,
# transformers < 5.21, numpy < 2.4), not from requirements.txt.
VLLM_ENVS = {"vllm", "benchmarks"}
VLLM_PINNED = {"torch", "transformers", "numpy", "tokenizers"}


@pytest.fixture(scope="module")
def rules():
    """(rule, env, scripts) of the paper run and of the miniature (some rules pick envs by config)."""
    return {cfg: workflow_rules(REPO / cfg) for cfg in ("config.yaml", "config/miniature.yaml")}


def test_every_rule_env_holds_what_its_jobs_import(rules):
    distributions = import_distributions()
    problems = sorted({p for rs in rules.values() for p in missing_imports(rs, SOURCES, distributions)})
    assert not problems, "\n".join(problems)


def test_rules_name_locked_env_files(rules):
    for rs in rules.values():
        for r in rs:
            assert r.env.parent == REPO / "envs", f"rule {r.rule}: conda env {r.env} is not under envs/"
            assert (SOURCES / r.env.name).is_file(), f"rule {r.rule}: no source envs/source/{r.env.name}"
            assert locked_digest(r.env), f"rule {r.rule}: {r.env.name} is not a locked env file"


def test_small_cpu_jobs_run_on_the_submit_host(rules):
    """Tables, figures and the report (envs/paper.yaml) and the judge cost estimate are localrules;
    nothing that asks the cluster for GPUs or reads the corpus is."""
    paper = {r.rule: r for r in rules["config.yaml"]}
    local = {name for name, r in paper.items() if r.local}
    assert {name for name, r in paper.items() if r.env.stem == "paper"} <= local
    assert {"judge_cost_estimate", "pairwise_winrate", "failure_mode_counts"} <= local
    assert not local & {"corpus_statistics", "score_shard", "filter_shard", "train_cpt", "cpt_scaling"}
    # the network rules are local too (rules/inputs.smk: where the network is); the rest is small CPU work
    network = {"fetch_model", "download_fineweb_shard", "sample_medqa", "fetch_medalpaca", "fetch_lm_eval_dataset"}
    network |= {"translate_medqa", "translate_medalpaca", "judge_pairwise", "judge_failure_modes"}
    assert all(paper[name].env.stem in {"paper", "judge", "data"} for name in local - network), sorted(local)


def test_env_pins_agree_with_requirements_txt():
    pins = requirement_pins(REPO / "requirements.txt")
    for source in sorted(SOURCES.glob("*.yaml")):
        env = read_env(source)
        for name, spec in env.requirements().items():
            if name not in pins or (env.name in VLLM_ENVS and name in VLLM_PINNED):
                continue
            assert spec.split("==", 1)[-1] == pins[name] and "==" in spec, (
                f"{source.name}: {spec!r}, requirements.txt pins {name}=={pins[name]}"
            )


def test_locks_are_current():
    """Each envs/<name>.yaml was generated from the envs/source/<name>.yaml of today (make lock-envs)."""
    sources = {p.name for p in SOURCES.glob("*.yaml")}
    locks = {p.name for p in (REPO / "envs").glob("*.yaml")}
    assert sources == locks, (
        f"sources without lock: {sorted(sources - locks)}; locks without source: {sorted(locks - sources)}"
    )
    for name in sorted(sources):
        locked = REPO / "envs" / name
        assert locked_digest(locked) == source_digest(SOURCES / name), (
            f"envs/{name} is stale against envs/source/{name}: run `make lock-envs`"
        )
        pinned = read_env(locked).requirements()
        assert all("==" in spec for spec in pinned.values()), f"envs/{name}: an unpinned package"
        missing = set(read_env(SOURCES / name).requirements()) - set(pinned)
        assert not missing, f"envs/{name} lacks {sorted(missing)} of its source"


def test_import_walk_follows_calls_and_skips_optional_imports(tmp_path):
    """The walk counts an import inside a function once something reached calls it."""
    (tmp_path / "definemed").mkdir()
    (tmp_path / "scripts").mkdir()
    (tmp_path / "definemed" / "__init__.py").write_text("")
    (tmp_path / "definemed" / "lib.py").write_text(
        "import numpy\n"
        "def used():\n    import pandas\n"
        "def unused():\n    import vllm\n"
        "def optional():\n    try:\n        import tiktoken\n    except ImportError:\n        pass\n"
        "class Model:\n    def __init__(self):\n        import torch\n"
        "def train():\n    from transformers import TrainingArguments\n"
    )
    (tmp_path / "scripts" / "job.py").write_text(
        "import json\nfrom definemed.lib import used, optional\nused(); optional()\n"
    )
    assert set(file_imports(tmp_path / "scripts" / "job.py", tmp_path)) == {"numpy", "pandas"}
    (tmp_path / "scripts" / "job.py").write_text("from definemed import lib\nlib.Model(); lib.train()\n")
    assert set(file_imports(tmp_path / "scripts" / "job.py", tmp_path)) == {
        "numpy",
        "torch",
        "transformers",
        "accelerate",
    }


def test_import_walk_follows_relative_imports_inside_subpackages(tmp_path):
    """`from .x import y` in definemed/<stage>/ reaches that stage's x, `from ..x` the package's."""
    stage = tmp_path / "definemed" / "stage"
    stage.mkdir(parents=True)
    (tmp_path / "scripts").mkdir()
    (tmp_path / "definemed" / "__init__.py").write_text("")
    (tmp_path / "definemed" / "shared.py").write_text("import pyarrow\n")
    (stage / "__init__.py").write_text("")
    (stage / "model.py").write_text("import torch\nfrom ..shared import *\n")
    (stage / "run.py").write_text("from .model import *\nfrom . import helpers\n")
    (stage / "helpers.py").write_text("import numpy\n")
    (tmp_path / "scripts" / "job.py").write_text("from definemed.stage.run import *\n")
    found = file_imports(tmp_path / "scripts" / "job.py", tmp_path)
    assert set(found) == {"torch", "pyarrow", "numpy"}
    assert found["pyarrow"] == {"definemed/shared.py:1"}
    (stage / "run.py").write_text("from .model import *\n")
    assert set(file_imports(tmp_path / "scripts" / "job.py", tmp_path)) == {"torch", "pyarrow"}


def rule_venvs() -> Path:
    venvs = os.environ.get("DEFINEMED_RULE_VENVS")
    if not venvs:
        skip_or_fail("DEFINEMED_RULE_VENVS is not set (make rule-venvs / make vllm-reader build them; .ci/run sets it)")
    return Path(venvs).resolve()


def through_conda() -> bool:
    return os.environ.get("DEFINEMED_MINIATURE_SDM") == "conda"


def rule_venv_pythons() -> dict[str, Path]:
    """Env name -> python of each venv `make rule-venvs` built (DEFINEMED_RULE_VENVS)."""
    venvs = rule_venvs()
    return {
        p.name: p / "bin" / "python"
        for p in venvs.iterdir()
        if (p / "bin" / "python").exists() and (SOURCES / f"{p.name}.yaml").is_file()
    }


def check_imports(rules, built: dict[str, Path]):
    """Each env in `built` imports every module its rules' jobs reach (all rules, not only those
    the miniature runs)."""
    needed: dict[str, set[str]] = {}
    for rs in rules.values():
        for r in rs:
            for script in r.scripts:
                for name in file_imports(script):
                    if name not in BACKEND_IMPORTS or r.env.stem in BACKEND_IMPORTS[name]:
                        needed.setdefault(r.env.stem, set()).add(name)
    assert {"data", "judge", "paper", "merge", "transformers", "train"} <= set(built), f"built: {sorted(built)}"
    for env, python in sorted(built.items()):
        code = "; ".join(f"import {m}" for m in sorted(needed.get(env, ())))
        proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
        assert proc.returncode == 0, f"env {env} (envs/{env}.yaml, {python}): {code}\n{proc.stderr[-2000:]}"


def test_built_venvs_import_what_their_rules_need(rules):
    """The venvs of `make rule-venvs`, built from the locks (a developer's check: CI checks the envs
    its miniature's conda run built, below)."""
    if through_conda():
        pytest.skip("CI checks the envs the conda stand-in built (test_conda_envs_import_what_their_rules_need)")
    check_imports(rules, rule_venv_pythons())


def test_conda_envs_import_what_their_rules_need(miniature, rules):
    """Through --sdm conda (CI): the envs Snakemake created for the miniature through the conda
    stand-in, each from its lock."""
    from conftest import conda_prefix

    if not through_conda():
        skip_or_fail("DEFINEMED_MINIATURE_SDM is not conda (CI sets it)")
    envs = conda_prefixes(conda_prefix()).values()
    check_imports(rules, {e["env"]: Path(e["python"]) for e in envs if e["built"]})


def test_miniature_jobs_ran_in_their_rule_envs(miniature, rules):
    """Through --sdm conda (CI), Snakemake's records say each job ran in its rule's env: built (a venv
    of the conda stand-in) or, for an env that cannot be built on CPU (only the vLLM-pinned ones),
    the calling env, named as such."""
    from conftest import conda_prefix

    if not through_conda():
        skip_or_fail("DEFINEMED_MINIATURE_SDM is not conda (CI sets it)")
    env_of: dict[str, set[str]] = {}
    for rs in rules.values():
        for r in rs:
            env_of.setdefault(r.rule, set()).add(r.env.stem)
    jobs = conda_jobs(miniature.parent, conda_prefix())
    assert jobs, f"no job records under {miniature.parent}/.snakemake/metadata"
    ran_in: dict[str, set[str]] = {}
    for job in jobs:
        rule, env = job["rule"], job["env"]
        assert env in env_of[rule], f"rule {rule} ran in {env}, its conda: names {sorted(env_of[rule])}"
        assert job["built"] or env in VLLM_ENVS, f"env {env} of rule {rule} was not built: {job}"
        if job["built"]:
            assert job["python"] == str(Path(job["prefix"]) / "bin" / "python"), job
        ran_in.setdefault(env, set()).add(rule)
    assert {"data", "judge", "paper", "merge", "transformers", "train"} <= set(ran_in), sorted(ran_in)


def test_conda_standin_answers_snakemake(tmp_path):
    """The conda stand-in (tests/support/overlays/conda_standin) answers what Snakemake's conda
    deployment calls (snakemake/deployment/conda.py): its version check, `conda info --json` (the
    prefix whose bin/activate jobs source), `conda env create --file --prefix`; activation puts the
    env first."""
    import json

    from conftest import BIN, CONDA_STANDIN

    conda = CONDA_STANDIN / "conda"
    version = subprocess.run([conda, "--version"], capture_output=True, text=True, check=True).stdout
    assert re.fullmatch(r"conda 2[4-9]\.\d+\.\d+\s*", version), version
    info = json.loads(subprocess.run([conda, "info", "--json"], capture_output=True, text=True, check=True).stdout)
    assert (Path(info["conda_prefix"]) / "bin" / "activate").is_file() and info["platform"] == "linux-64"
    prefix = tmp_path / "env"
    # python3 on PATH runs the stand-in: the development venv's (Snakemake's), as under make
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", DEFINEMED_STANDIN_WHEELS=str(tmp_path / "w"))
    subprocess.run(
        [conda, "env", "create", "--quiet", "--no-default-packages", "--file", REPO / "envs" / "data.yaml",
         "--prefix", prefix],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    record = json.loads((prefix / "conda-meta" / "definemed-standin.json").read_text())
    assert record["env"] == "data" and record["built"], record
    job = f"source {info['conda_prefix']}/bin/activate '{prefix}'; command -v python; python -c 'import pyarrow'"
    proc = subprocess.run(["bash", "-c", job], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == str(prefix / "bin" / "python"), proc


# Run by the vLLM env's transformers: load a model directory and print its logits on a chat prompt.
READ_WITH_VLLM_TRANSFORMERS = """
import json, sys, torch, transformers
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32).eval()
text = tok.apply_chat_template([{"role": "user", "content": sys.argv[2]}], tokenize=False, add_generation_prompt=True)
ids = tok(text, return_tensors="pt").input_ids
with torch.no_grad():
    logits = model(ids).logits[0, -1]
out = {"version": transformers.__version__, "text": text, "ids": ids[0].tolist(), "logits": logits.tolist()}
print(json.dumps(out))
"""


@pytest.mark.parametrize("family", ["tiny-qwen2.5-7b-instruct", "tiny-mistral-small-24b-instruct"])
def test_vllm_env_transformers_reads_merged_models_of_the_training_stack(family, miniature_config, tmp_path):
    """A SLERP merge written with transformers 5.24 and mergekit (train and merge envs) loads in the
    transformers the vLLM env resolves to (< 5.21) with the same tokens, chat prompt and logits."""
    import json

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from definemed.miniature.tiny_models import build_tiny_model
    from definemed.training.merge import MergeSettings, run_slerp

    reader = rule_venvs() / "vllm-transformers" / "bin" / "python"
    if not reader.exists():
        skip_or_fail(f"{reader} not built (make vllm-reader)")
    spec = dict(miniature_config["models"][family])
    # the architecture and tokenizer only: fitting (fit_base) is the miniature's build step, not this contract
    spec["tiny"] = {k: v for k, v in spec["tiny"].items() if not k.startswith("fit_")}
    build_tiny_model(family, spec, tmp_path / "base", seed=0, log=lambda *a: None)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "base")
    torch.manual_seed(1)
    with torch.no_grad():  # a "trained" model: the base moved off its initialisation
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "cpt")
    AutoTokenizer.from_pretrained(tmp_path / "base").save_pretrained(tmp_path / "cpt")
    run_slerp(
        tmp_path / "base", tmp_path / "cpt", tmp_path / "merged", MergeSettings.from_config(miniature_config["merge"])
    )

    prompt = "Welche Symptome hat eine Lungenentzündung?"
    tok = AutoTokenizer.from_pretrained(tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32).eval()
    text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    ids = tok(text, return_tensors="pt").input_ids
    with torch.no_grad():
        logits = merged(ids).logits[0, -1]

    proc = subprocess.run(
        [str(reader), "-c", READ_WITH_VLLM_TRANSFORMERS, str(tmp_path / "merged"), prompt],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    read = json.loads(proc.stdout.strip().splitlines()[-1])
    vllm_pin = read_env(REPO / "envs" / "vllm.yaml").requirements()["transformers"]
    assert vllm_pin == f"transformers=={read['version']}"
    assert read["text"] == text and read["ids"] == ids[0].tolist()
    assert torch.allclose(torch.tensor(read["logits"]), logits, atol=1e-4), (read["logits"][:5], logits[:5])


def _pypi_reachable() -> bool:
    import socket

    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(
    not _pypi_reachable(), reason="asks PyPI which wheels exist (uv --only-binary, ~15 s for all locks); offline here"
)
def test_locks_install_from_wheels_on_glibc_2_28_but_the_documented_source_builds():
    """Every lock's pins resolve to manylinux_2_28 x86_64 wheels (RHEL 8 class clusters: glibc 2.28)
    except definemed/envs.py SOURCE_BUILDS, each with what its build needs; the README's cluster
    section names them. `python scripts/envs.py wheels` prints the same."""
    import sys

    from definemed.envs import SOURCE_BUILDS

    proc = subprocess.run(
        [sys.executable, "scripts/envs.py", "wheels"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    gaps = set(re.findall(r": (\S+)==\S+ has no x86_64-manylinux_2_28 wheel", proc.stderr))
    assert gaps == set(SOURCE_BUILDS), proc.stderr[-3000:]
    readme = (REPO / "README.md").read_text()
    assert all(f"{name}" in readme for name in SOURCE_BUILDS) and "manylinux_2_31" in readme


def _make_n(target: str, tmp_path: Path, *args: str) -> list[str]:
    proc = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_path / 'venv'}", *args], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_setup_asks_for_the_cpu_torch_by_name(tmp_path):
    """`make setup` installs torch as `torch==2.13.0+cpu` (PyTorch's CPU index, TORCH_INDEX, or a local
    wheel; PyPI has no `+cpu` version), alone and before requirements.txt: no index can hand it the
    CUDA build that `torch==2.13.0` is on PyPI for Linux."""
    pin = requirement_pins(REPO / "requirements.txt")["torch"]
    lines = _make_n("setup", tmp_path)
    installs = [line for line in lines if "pip" in line and " install " in line]
    assert len(installs) == 2, installs
    torch, rest = installs
    assert f'"torch=={pin}+cpu"' in torch and "--no-deps" in torch, torch
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in torch, torch
    assert rest.endswith("-r requirements.txt -c requirements-lock.txt") and "index" not in rest, rest
    assert "uv pip install" in rest and "--compile-bytecode" in rest, rest
    lines = _make_n("setup", tmp_path, "TORCH_INDEX=file:///srv/wheels/cpu")
    assert any("--extra-index-url file:///srv/wheels/cpu" in line for line in lines), lines
    rule_venvs = [line for line in _make_n("rule-venvs", tmp_path) if "scripts/envs.py" in line]
    assert len(rule_venvs) == 2 and all("--torch-index https://download.pytorch.org/whl/cpu" in c for c in rule_venvs)


def test_the_requirements_lock_holds_every_pin_of_requirements_txt():
    """requirements-lock.txt (pip's resolution, uv's constraints in make setup) was made from the
    requirements.txt beside it: every direct pin but torch (installed first, by its CPU name) is in
    the lock at the same version, and the lock pins every line exactly."""
    pins = requirement_pins(REPO / "requirements.txt")
    lock_lines = [
        line for line in (REPO / "requirements-lock.txt").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^=\s]+", line) for line in lock_lines), lock_lines
    lock = requirement_pins(REPO / "requirements-lock.txt")
    stale = {n: (v, lock.get(n)) for n, v in pins.items() if n != "torch" and lock.get(n) != v}
    assert not stale, f"requirements-lock.txt disagrees with requirements.txt (make lock-requirements): {stale}"
    assert "torch" not in lock


@pytest.mark.parametrize("command", [["build", "data", "hub", "judge", "paper", "merge", "transformers", "train"],
                                     ["build-vllm-reader"]])  # fmt: skip
def test_rule_venvs_ask_for_the_cpu_torch_by_name(command, tmp_path):
    """The venv builder (make rule-venvs, the conda stand-in) pins torch as `torch==X+cpu`, fetched by
    pip from the torch index (or a local wheel) into the one wheel directory uv installs it from, with
    uv's own configuration off; no CUDA-only pin reaches uv."""
    import sys

    proc = subprocess.run(
        [sys.executable, "scripts/envs.py", command[0], "--dry-run", "--torch-index", "file:///srv/cpu",
         str(tmp_path), *command[1:]],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    fetches = [line for line in out if " -m pip " in line]
    assert fetches and all(
        "download" in f and "--no-deps" in f and "--extra-index-url file:///srv/cpu" in f and f.endswith("+cpu")
        for f in fetches
    ), fetches
    installs = [line for line in out if " pip install " in line]
    assert installs and all(
        "--no-config" in i and f"--find-links {tmp_path / '.wheels'}" in i and "--extra-index-url" not in i
        for i in installs
    ), installs
    torch = [line for line in out if re.match(r"torch\b", line)]
    assert torch and all(re.fullmatch(r"torch==[0-9.]+\+cpu", t) for t in torch), torch
    assert not [line for line in out if re.match(r"(nvidia-|cuda-|vllm==|flash-attn)", line)]
