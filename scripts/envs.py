"""The conda env files of the paper run: resolve, lock, and build CPU venvs from them.

    python scripts/envs.py resolve               # every envs/source/*.yaml resolves (uv, metadata only)
    python scripts/envs.py lock                  # envs/<name>.yaml: every package pinned (make lock-envs)
    python scripts/envs.py wheels                # which pins have no manylinux_2_28 x86_64 wheel (index)
    python scripts/envs.py build .envs data hub  # a venv per env from its locked file (CPU torch)
    python scripts/envs.py build-vllm-reader .envs  # the vLLM env's transformers on CPU torch

Resolution and locks target the paper run's platform: linux x86_64, the env's python (3.11).
`build` installs a locked file with uv, exactly its pins (--no-deps), torch as its CPU build by
name (torch==X+cpu, fetched by pip from --torch-index or pip's configured wheel directories into
<target>/.wheels) and the GPU-only packages left out (definemed/venvs.py).
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _cli import setup_logging
from definemed.envs import SOURCE_BUILDS, WHEEL_PLATFORM, canonical, lock_text, read_env
from definemed.io import write_text
from definemed.venvs import CPU_TORCH_INDEX, GPU_ONLY, build_venv, cpu_torch, fetch_torch, install_command, name_of, uv

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "envs" / "source"
PLATFORM = "x86_64-unknown-linux-gnu"
log = setup_logging()


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


def build(target: Path, names: list[str], torch_index: str, dry_run: bool = False) -> int:
    for source in sources(names):
        start = time.monotonic()
        venv = target / source.stem
        left = build_venv(REPO / "envs" / source.name, venv, target / ".wheels", torch_index, dry_run).left_out
        log.info("built %s from envs/%s in %.0f s (left out: %s)", venv, source.name, time.monotonic() - start,
                 ", ".join(name_of(s) for s in left) or "nothing")  # fmt: skip
    return 0


def build_vllm_reader(target: Path, torch_index: str, dry_run: bool = False) -> int:
    """A CPU venv with the transformers stack of the vLLM env (its lock's versions, mistral-common
    included: with it, transformers picks tokenizers differently), torch 2.13 CPU: the reader of
    the tests that models written by the training and merge envs load in the vLLM env
    (tests/test_envs.py) and that prompts render there as in the transformers env (tests/test_chat.py)."""
    locked = read_env(REPO / "envs" / "vllm.yaml").requirements()
    venv = target / "vllm-transformers"
    start = time.monotonic()
    torch = cpu_torch(read_env(REPO / "envs" / "transformers.yaml").requirements()["torch"])
    fetch_torch(torch, torch_index, target / ".wheels", dry_run)
    # the vLLM env's versions of everything transformers needs; torch from the CPU wheel instead
    constraints = [spec for name, spec in locked.items() if not GPU_ONLY.match(name) and name != "torch"]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "constraints.txt").write_text("\n".join(constraints) + "\n")
        req = Path(tmp) / "requirements.txt"
        wanted = [f"-c {Path(tmp) / 'constraints.txt'}", torch, "transformers", "safetensors", "jinja2"]
        wanted.append("mistral-common")
        req.write_text("\n".join(wanted) + "\n")
        cmds = [
            [uv(), "venv", "--quiet", "--clear", "--python", sys.executable, str(venv)],
            install_command(venv / "bin" / "python", req, target / ".wheels", no_deps=False),
        ]
        for cmd in cmds:
            if dry_run:
                print(" ".join(cmd))
            else:
                subprocess.run(cmd, check=True)
        if dry_run:
            print(req.read_text())
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
b.add_argument("--torch-index", default=CPU_TORCH_INDEX, help="where torch==X+cpu is found (make: TORCH_INDEX)")
b.add_argument("--dry-run", action="store_true", help="print the commands and pins instead of running them")
r = sub.add_parser("build-vllm-reader")
r.add_argument("target", type=Path)
r.add_argument("--torch-index", default=CPU_TORCH_INDEX, help="where torch==X+cpu is found (make: TORCH_INDEX)")
r.add_argument("--dry-run", action="store_true", help="print the commands and pins instead of running them")
args = p.parse_args()
if args.command == "resolve":
    sys.exit(resolve(args.names))
if args.command == "lock":
    sys.exit(lock(args.names))
if args.command == "wheels":
    sys.exit(wheels(args.names))
if args.command == "build-vllm-reader":
    sys.exit(build_vllm_reader(args.target.resolve(), args.torch_index, args.dry_run))
sys.exit(build(args.target.resolve(), args.names, args.torch_index, args.dry_run))
