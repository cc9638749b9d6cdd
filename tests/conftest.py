import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
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

    from definemed.miniature.fixtures import generate_documents
    from definemed.miniature.tiny_models import build_tiny_model
    from definemed.training.packing import pack_corpus

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


CONDA_STANDIN = REPO / "tests" / "support" / "overlays" / "conda_standin" / "bin"


def cpt_job_settings(config: dict | None = None, **changes) -> dict:
    """The cpt section as rules/cpt.smk hands it to a training job (its runs and resources left
    out), from `config` (default: the miniature's), with `changes`."""
    from definemed.config import load

    config = config or load(REPO / "config" / "miniature.yaml")
    return {k: v for k, v in config["cpt"].items() if k not in ("runs", "resources")} | changes


def conda_args() -> tuple[list[str], list[Path]]:
    """DEFINEMED_MINIATURE_SDM=conda (CI): the miniature runs through Snakemake's own conda
    deployment (`--sdm conda`), each env created once under DEFINEMED_CONDA_PREFIX (default
    .envs/conda) by the conda stand-in (tests/support/overlays/conda_standin), which goes first on
    PATH."""
    if os.environ.get("DEFINEMED_MINIATURE_SDM") != "conda":
        return [], []
    return ["--sdm", "conda", "--conda-prefix", str(conda_prefix())], [CONDA_STANDIN]


def conda_prefix() -> Path:
    return Path(os.environ.get("DEFINEMED_CONDA_PREFIX") or REPO / ".envs" / "conda").resolve()


def snakemake_command(*args, path=()) -> tuple[list[str], dict]:
    """argv and environment of a test's Snakemake: with the miniature's deployment (conda_args) unless
    the call names its own, because Snakemake reruns every job whose recorded software stack (the
    conda env's hash under --sdm conda, none without) differs from the call's."""
    extra, standin = ([], []) if "--sdm" in args else conda_args()
    path = [*map(str, path), *map(str, standin), str(BIN), os.environ.get("PATH", "")]
    return [str(BIN / "snakemake"), *extra, *args], dict(os.environ, PATH=os.pathsep.join(path))


def snakemake(workdir, *args, check=True, timeout=900, path=()):
    argv, env = snakemake_command(*args, path=path)
    proc = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


class BackgroundMiniature:
    """The miniature run end to end in a scratch copy of the repository, started in the background
    as soon as the collected tests are known to need it, so that the quick tests (ordered first)
    use the CPU it leaves idle; the `miniature` fixture waits for it."""

    def __init__(self, work: Path):
        self.work, self.log = work, work.parent / "snakemake.log"
        self.proc: subprocess.Popen | None = None
        self.seconds: float | None = None

    def start(self):
        copy_repo(self.work)
        argv, env = snakemake_command("--profile", "profiles/miniature")
        self.started = time.monotonic()
        with open(self.log, "w") as log:  # its own session: stop() ends snakemake and its jobs
            self.proc = subprocess.Popen(
                argv,
                cwd=self.work,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )

    def wait(self, timeout=3600) -> Path:
        try:
            code = self.proc.wait(timeout=max(1, timeout - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"the miniature ran past {timeout} s: {self.log}") from None
        if self.seconds is None:
            self.seconds = time.monotonic() - self.started
        if code != 0:
            raise AssertionError(f"the miniature failed ({self.log}):\n{self.log.read_text()[-6000:]}")
        return self.work / "miniature"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # snakemake removes the outputs of the jobs it ends
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


BACKGROUND: list[BackgroundMiniature] = []
# Tests marked `start_with_miniature(start=f)`: f(miniature) runs as soon as the miniature exists,
# beside the other slow tests (which those tests follow), and the test joins what it started via the
# `started` fixture. {nodeid: start} of the selected ones, then {nodeid: what start returned}.
TO_START: dict[str, object] = {}
STARTED: dict[str, object] = {}
TMP_PATH_FACTORY: list = []  # the session's (set at collection), for what runs in a thread (in_thread)


class InThread:
    """A test's body run in a thread from the moment the miniature exists, beside the other slow
    tests (most of them one process at a time: a core idles); the test joins it, and the body's
    failure is the test's."""

    def __init__(self, body, miniature: Path):
        tmp = TMP_PATH_FACTORY[0].mktemp(body.__name__)
        self.result, self.error = None, None
        self.thread = threading.Thread(target=self._run, args=(body, miniature, tmp), name=body.__name__, daemon=True)
        self.thread.start()

    def _run(self, body, miniature: Path, tmp: Path):
        try:
            self.result = body(miniature, tmp)
        except BaseException as e:  # pytest.fail and assertions alike: re-raised in the test
            self.error = e

    def join(self, timeout: float):
        self.thread.join(timeout)
        if self.thread.is_alive():
            pytest.fail(f"{self.thread.name} did not finish within {timeout:.0f} s")
        if self.error is not None:
            raise self.error
        return self.result


def in_thread(body):
    """`start_with_miniature(start=in_thread(body))`: body(miniature, tmp_path) in a thread (InThread)."""
    return lambda miniature: InThread(body, miniature)


def needs_miniature(item) -> bool:
    return "miniature" in getattr(item, "fixturenames", ())


def starts_with_miniature(item) -> bool:
    return item.get_closest_marker("start_with_miniature") is not None


def pytest_collection_modifyitems(config, items):
    """`slow`: every test that needs the finished miniature (a 10-minute run unless
    DEFINEMED_TEST_MINIATURE points at one; the real-Slurm test is one of them); `pytest -m "not slow"`
    is the quick loop. The slow tests run last; pytest_collection_finish starts the miniature for them."""
    for item in items:
        if needs_miniature(item):
            item.add_marker(pytest.mark.slow)
    # stable: the quick tests first, the tests that join what started beside them last
    items.sort(key=lambda item: (needs_miniature(item), starts_with_miniature(item)))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """Starts the miniature in the background if a selected test (after -m, -k) needs it."""
    if session.config.option.collectonly:
        return
    if os.environ.get("PYTEST_XDIST_WORKER") and any(needs_miniature(item) for item in session.items):
        raise pytest.UsageError('the slow tests share one miniature run: run them without -n (-n 2 -m "not slow")')
    TMP_PATH_FACTORY[:] = [session.config._tmp_path_factory]
    for item in session.items:
        if starts_with_miniature(item):
            TO_START[item.nodeid] = item.get_closest_marker("start_with_miniature").kwargs["start"]
    if os.environ.get("DEFINEMED_TEST_MINIATURE"):
        return
    if any(needs_miniature(item) for item in session.items):
        factory = session.config._tmp_path_factory
        background = BackgroundMiniature(factory.mktemp("miniature-run") / "repo")
        background.start()
        BACKGROUND.append(background)


def start_beside(miniature: Path) -> Path:
    for nodeid, start in list(TO_START.items()):
        del TO_START[nodeid]
        try:
            STARTED[nodeid] = start(miniature)
        except Exception as e:  # that test fails with it, not every test that needs the miniature
            STARTED[nodeid] = e
    return miniature


@pytest.fixture
def started(request, miniature):
    """What this test's `start_with_miniature(start=f)` started when the miniature was ready."""
    what = STARTED.pop(request.node.nodeid)
    if isinstance(what, Exception):
        raise what
    return what


def pytest_sessionfinish(session):
    # an interrupted or failed session leaves no snakemake running
    for background in [*BACKGROUND, *STARTED.values()]:
        if hasattr(background, "stop"):
            background.stop()


@pytest.fixture(scope="session")
def miniature():
    """The finished miniature run's `miniature/` folder (see BackgroundMiniature)."""
    reuse = os.environ.get("DEFINEMED_TEST_MINIATURE")
    if reuse:  # developers: point at a finished miniature/ to skip the 10-minute run
        return start_beside(Path(reuse).resolve())
    if not BACKGROUND:  # a session whose collection did not foresee it (e.g. a plugin's reordering)
        background = BackgroundMiniature(Path(tempfile.mkdtemp(prefix="miniature-run-")) / "repo")
        background.start()
        BACKGROUND.append(background)
    return start_beside(BACKGROUND[0].wait())


def pytest_terminal_summary(terminalreporter):
    """CI prints the miniature's wall time (its budget: 10 minutes on a quiet 2-core machine; here it
    shared the CPU with the quick tests) and, run through --sdm conda, its jobs per env from
    Snakemake's records (definemed.envs.conda_jobs)."""
    from collections import Counter

    from definemed.envs import conda_jobs

    for background in BACKGROUND:
        if background.seconds is None:
            continue
        seconds = background.seconds
        terminalreporter.write_line(
            f"miniature end to end: {seconds:.0f} s ({seconds / 60:.1f} min, beside the quick tests)"
        )
        if conda_args()[0]:
            jobs = conda_jobs(background.work, conda_prefix())
            terminalreporter.write_line(f"miniature jobs per env (Snakemake's records, {len(jobs)} jobs):")
            count = Counter((j["env"], j["built"], j["python"]) for j in jobs)
            for (env, built, python), n in sorted(count.items(), key=lambda kv: str(kv[0])):
                where = "its venv" if built else "NOT BUILT ON CPU: the calling env"
                terminalreporter.write_line(f"  {n:4d}  {env}  ({where}: {python})")


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
    from definemed.miniature.tiny_models import build_tiny_model

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
