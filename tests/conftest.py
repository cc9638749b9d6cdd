import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def skip_or_fail(reason: str):
    """Skip a test whose prerequisite is missing on a developer's machine; in CI (`CI` set) the
    same gap fails the test, so a broken prerequisite (rule venvs, Slurm, ...) cannot pass silently."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: a skip here would hide a broken prerequisite)")
    pytest.skip(reason)


def copy_repo(dest: Path) -> Path:
    """The tracked and untracked-but-not-ignored files of the repository, as CI would see them."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for f in files:
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    return dest


def build_tiny_cpt_inputs(root: Path, dtype=None) -> Path:
    """A tiny Qwen2.5-like base (saved in `dtype` where given, as the paper's bf16 bases) and a
    packed corpus under `root`, built offline in seconds: the inputs of the CPT tests."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from definemed.fixtures import generate_documents
    from definemed.packing import pack_corpus
    from definemed.tiny_models import build_tiny_model

    tiny = {
        "architecture": "qwen2",
        "hidden_size": 32,
        "num_layers": 2,
        "num_heads": 4,
        "num_kv_heads": 2,
        "intermediate_size": 64,
        "vocab_size": 400,
        "max_position_embeddings": 128,
        "tokenizer_documents": 200,
    }
    build_tiny_model("tiny", {"tiny": tiny, "chat_template": "qwen2.5"}, root / "base", seed=0)
    if dtype is not None:
        model = AutoModelForCausalLM.from_pretrained(root / "base", dtype=dtype)
        model.save_pretrained(root / "base")  # definemed-source.json and the tokenizer stay
    docs = generate_documents(5, 60, 0.5, 0.05)
    table = pa.table({"id": [f"d{i}" for i in range(len(docs))], "text": [d["text"] for d in docs]})
    pq.write_table(table, root / "part.parquet")
    pack_corpus([root / "part.parquet"], AutoTokenizer.from_pretrained(root / "base"), 64, root / "packed")
    return root


def snakemake(workdir, *args, check=True, timeout=900):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        [str(BIN / "snakemake"), *args], cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session")
def miniature(tmp_path_factory):
    """The miniature run end to end, once per session, in a scratch copy of the repository."""
    reuse = os.environ.get("DEFINEMED_TEST_MINIATURE")
    if reuse:  # developers: point at a finished miniature/ to skip the 10-minute run
        return Path(reuse).resolve()
    import time

    work = copy_repo(tmp_path_factory.mktemp("miniature-run"))
    start = time.monotonic()
    snakemake(work, "--profile", "profiles/miniature", timeout=3600)
    MINIATURE_SECONDS.append(time.monotonic() - start)
    return work / "miniature"


MINIATURE_SECONDS: list[float] = []


def pytest_terminal_summary(terminalreporter):
    """CI prints the miniature's wall time (its budget: 10 minutes on a quiet 2-core machine)."""
    for seconds in MINIATURE_SECONDS:
        terminalreporter.write_line(f"miniature end to end: {seconds:.0f} s ({seconds / 60:.1f} min)")


@pytest.fixture(scope="session")
def paper_dry_run():
    """`snakemake -n --quiet rules` of the paper run, once per session (several tests read its counts)."""
    return snakemake(REPO, "-n", "--quiet", "rules")


@pytest.fixture(scope="session")
def miniature_config():
    from definemed.config import load

    return load(REPO / "config" / "miniature.yaml")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, miniature_config):
    """tiny_model(name): one of the miniature's tiny models, untrained, built here in seconds (a
    smaller tokenizer corpus), for tests that need the architecture and a tokenizer, not the
    miniature's trained weights."""
    from definemed.config import validated
    from definemed.tiny_models import build_tiny_model

    built = {}

    def build(name: str) -> Path:
        if name not in built:
            spec = validated(miniature_config["models"][name], "model")
            spec["tiny"].update(tokenizer_documents=300, vocab_size=1000)
            spec["tiny"].pop("fit_labeller", None)  # the labeller untrained, too
            spec["tiny"].pop("fit_base", None)  # and the bases
            built[name] = tmp_path_factory.mktemp(name) / "model"
            build_tiny_model(name, spec, built[name], seed=0)
        return built[name]

    return build


def pytest_collection_modifyitems(config, items):
    """`slow`: every test that needs the finished miniature (a 10-minute run unless
    DEFINEMED_TEST_MINIATURE points at one) or a real Slurm; `pytest -m "not slow"` is the quick loop."""
    for item in items:
        if "miniature" in getattr(item, "fixturenames", ()) or item.path.name == "test_slurm.py":
            item.add_marker(pytest.mark.slow)
