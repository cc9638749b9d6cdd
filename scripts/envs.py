"""The conda env files of the paper run: resolve, lock, and build CPU venvs from them.

    python scripts/envs.py resolve               # every envs/source/*.yaml resolves (uv, metadata only)
    python scripts/envs.py lock                  # envs/<name>.yaml: every package pinned (make lock-envs)
    python scripts/envs.py wheels                # which pins have no manylinux_2_28 x86_64 wheel (index)
    python scripts/envs.py build .envs data hub  # a venv per env from its locked file (CPU torch)
    python scripts/envs.py build-vllm-reader .envs  # the vLLM env's transformers on CPU torch

Resolution and locks target the paper run's platform: linux x86_64, the env's python (3.11).
`build` installs a locked file with uv, exactly its pins (--no-deps), taking torch from pip's
configured find-links (on CI machines the local CPU wheel; uv does not read pip's configuration)
and leaving out the CUDA-only packages a linux torch from PyPI pulls (nvidia-*, cuda-*),
which the CPU wheel does not need.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _cli import setup_logging
from definemed.envs import SOURCE_BUILDS, WHEEL_PLATFORM, canonical, lock_text, read_env
from definemed.io import write_text

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "envs" / "source"
PLATFORM = "x86_64-unknown-linux-gnu"
CUDA_ONLY = re.compile(r"^(nvidia-|cuda-)")
log = setup_logging()


def uv() -> str:
    found = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        raise SystemExit("uv not found: it is in requirements.txt (make setup)")
    return found


def compile_env(source: Path, prefer: Path | None = None) -> list[str]:
    """Every package of the env pinned, as uv resolves the source's pip list (raises on conflict).
    `prefer`: a locked env file whose pins uv keeps where they still resolve (its --output-file
    preferences), so that a lock changes only what the source's change needs."""
    env = read_env(source)
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.in"
        req.write_text("\n".join(env.pip) + "\n")
        out = Path(tmp) / "requirements.txt"
        if prefer is not None and prefer.is_file():
            out.write_text("\n".join(read_env(prefer).pip) + "\n")
        proc = subprocess.run(
            [uv(), "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--no-config",
             "--python-version", env.python_version(), "--python-platform", PLATFORM,
             *(["--output-file", str(out)] if out.exists() else []), str(req)],
            capture_output=True, text=True,
        )  # fmt: skip
        if out.exists():
            proc.stdout = out.read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"{source.relative_to(REPO)} does not resolve:\n{proc.stderr.strip()}")
    return [line for line in proc.stdout.splitlines() if line and not line.startswith("#")]


def sources(names: list[str]) -> list[Path]:
    paths = [SOURCES / f"{n}.yaml" for n in names] if names else sorted(SOURCES.glob("*.yaml"))
    for p in paths:
        if not p.is_file():
            raise SystemExit(f"no env source {p.relative_to(REPO)}")
    return paths


def resolve(names: list[str]) -> int:
    failed = 0
    for source in sources(names):
        start = time.monotonic()
        try:
            pinned = compile_env(source)
        except RuntimeError as e:
            log.error("%s", e)
            failed += 1
            continue
        log.info("%s resolves: %d packages (%.1f s)", source.name, len(pinned), time.monotonic() - start)
    return 1 if failed else 0


def lock(names: list[str]) -> int:
    for source in sources(names):
        pinned = compile_env(source, prefer=REPO / "envs" / source.name)
        write_text(REPO / "envs" / source.name, lock_text(source, pinned))
        log.info("envs/%s: %d packages pinned", source.name, len(pinned))
    return 0


def wheel_gaps(locked: Path, platform: str = WHEEL_PLATFORM) -> dict[str, str]:
    """Packages of a locked env file without a wheel for `platform` (uv's --only-binary over the
    exact pins, --no-deps; each one found is set aside and the rest resolved again): name -> version.
    Needs the index (PyPI), a few seconds an env."""
    pins, gaps = list(read_env(locked).pip), {}
    while True:
        with tempfile.TemporaryDirectory() as tmp:
            req = Path(tmp) / "requirements.txt"
            req.write_text("\n".join(pins) + "\n")
            proc = subprocess.run(
                [uv(), "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--no-config", "--no-deps",
                 "--only-binary", ":all:", "--python-version", read_env(locked).python_version(),
                 "--python-platform", platform, str(req)],
                capture_output=True, text=True,
            )  # fmt: skip
        if proc.returncode == 0:
            return gaps
        m = re.search(r"Because (\S+)==(\S+) has no (?:usable )?wheels", proc.stderr)
        if not m:
            raise RuntimeError(f"{locked.name}: uv failed on {platform}:\n{proc.stderr.strip()[-2000:]}")
        gaps[canonical(m.group(1))] = m.group(2)
        pins = [p for p in pins if canonical(re.split(r"[=<>!~ \[]", p, maxsplit=1)[0]) != canonical(m.group(1))]


def wheels(names: list[str]) -> int:
    """Every lock installs from wheels on WHEEL_PLATFORM but for SOURCE_BUILDS (README "Running on a
    cluster"); prints what each env builds from source and what that needs."""
    failed = 0
    for source in sources(names):
        gaps = wheel_gaps(REPO / "envs" / source.name)
        for name, version in sorted(gaps.items()):
            need = SOURCE_BUILDS.get(name)
            log.info("envs/%s: %s==%s has no %s wheel: builds from source, needs %s", source.name, name, version,
                     WHEEL_PLATFORM, need or "UNKNOWN")  # fmt: skip
            failed += need is None
        if not gaps:
            log.info("envs/%s: wheels only on %s", source.name, WHEEL_PLATFORM)
    if failed:
        log.error("%d package(s) without a %s wheel are not in definemed/envs.py SOURCE_BUILDS", failed, WHEEL_PLATFORM)
    return 1 if failed else 0


def pip_find_links() -> list[str]:
    """pip's configured --find-links (on CI machines: the directory of the CPU torch wheel)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.find-links"], capture_output=True, text=True
    )
    return proc.stdout.split() if proc.returncode == 0 else []


def build(target: Path, names: list[str], find_links: list[str]) -> int:
    for source in sources(names):
        locked = REPO / "envs" / source.name
        venv = target / source.stem
        start = time.monotonic()
        subprocess.run([uv(), "venv", "--quiet", "--clear", "--python", sys.executable, str(venv)], check=True)
        pins = [p for p in read_env(locked).pip if not CUDA_ONLY.match(p)]
        links = [a for d in find_links for a in ("--find-links", d)]
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as req:
            req.write("\n".join(pins) + "\n")
            req.flush()
            # best match across the index and find-links: torch==2.13.0 is then the local
            # 2.13.0+cpu wheel (a local version sorts above the index's CUDA 2.13.0)
            subprocess.run(
                [uv(), "pip", "install", "--quiet", "--no-config", "--python", str(venv / "bin" / "python"),
                 "--no-deps", "--index-strategy", "unsafe-best-match", *links, "-r", req.name],
                check=True,
            )  # fmt: skip
        subprocess.run([uv(), "pip", "check", "--quiet", "--python", str(venv / "bin" / "python")], check=True)
        log.info("built %s from envs/%s in %.0f s", venv, source.name, time.monotonic() - start)
    return 0


def build_vllm_reader(target: Path, find_links: list[str]) -> int:
    """A CPU venv with the transformers stack of the vLLM env (its lock's versions, mistral-common
    included: with it, transformers picks tokenizers differently), torch 2.13 CPU: the reader of
    the tests that models written by the training and merge envs load in the vLLM env
    (tests/test_envs.py) and that prompts render there as in the transformers env (tests/test_chat.py)."""
    locked = read_env(REPO / "envs" / "vllm.yaml").requirements()
    venv = target / "vllm-transformers"
    start = time.monotonic()
    subprocess.run([uv(), "venv", "--quiet", "--clear", "--python", sys.executable, str(venv)], check=True)
    # the vLLM env's versions of everything transformers needs; torch from the CPU wheel instead
    constraints = [
        spec for name, spec in locked.items() if not CUDA_ONLY.match(name) and name not in {"torch", "triton"}
    ]
    links = [a for d in find_links for a in ("--find-links", d)]
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as c:
        c.write("\n".join(constraints) + "\n")
        c.flush()
        subprocess.run(
            [uv(), "pip", "install", "--quiet", "--no-config", "--python", str(venv / "bin" / "python"),
             "--index-strategy", "unsafe-best-match", *links, "-c", c.name,
             "torch==2.13.0", "transformers", "safetensors", "jinja2", "mistral-common"],
            check=True,
        )  # fmt: skip
    log.info("built %s (%s as in envs/vllm.yaml) in %.0f s", venv, locked["transformers"], time.monotonic() - start)
    return 0


p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
sub = p.add_subparsers(dest="command", required=True)
sub.add_parser("resolve").add_argument("names", nargs="*")
sub.add_parser("lock").add_argument("names", nargs="*")
sub.add_parser("wheels").add_argument("names", nargs="*")
b = sub.add_parser("build")
b.add_argument("target", type=Path)
b.add_argument("names", nargs="*")
b.add_argument("--find-links", nargs="*", help="wheel directories (default: pip's configured find-links)")
r = sub.add_parser("build-vllm-reader")
r.add_argument("target", type=Path)
r.add_argument("--find-links", nargs="*", help="wheel directories (default: pip's configured find-links)")
args = p.parse_args()
if args.command == "resolve":
    sys.exit(resolve(args.names))
if args.command == "lock":
    sys.exit(lock(args.names))
if args.command == "wheels":
    sys.exit(wheels(args.names))
links = pip_find_links() if args.find_links is None else args.find_links
if args.command == "build-vllm-reader":
    sys.exit(build_vllm_reader(args.target.resolve(), links))
sys.exit(build(args.target.resolve(), args.names, links))
