"""A CPU venv from a conda env file of envs/ (uv), with PyTorch's CPU build asked for by name.

Used by `scripts/envs.py build` (make rule-venvs) and by the conda stand-in of CI
(tests/support/overlays/conda_standin: `conda env create --file <env>.yaml --prefix <dir>`), so both
install the same way:
- torch is asked for as `torch==<pin>+cpu`. A `+cpu` version exists only on PyTorch's CPU index
  (`torch_index`, default CPU_TORCH_INDEX) or in a local wheel directory of pip's configuration:
  no index can hand out the Linux CUDA build that `torch==<pin>` names on PyPI (13 nvidia packages,
  cuda-toolkit and triton, ~2.8 GB against 192 MB). pip fetches that one wheel into `wheel_dir`
  (`pip download`: pip's configuration, local wheel directories included, applies; uv reads none
  of it and fails outright on an index it cannot reach), uv installs from there.
- GPU-only packages (GPU_ONLY: the CUDA runtime wheels, vllm, flash-attn, flashinfer) are left
  out; the rest of the lock installs exactly (--no-deps) and `uv pip check` must pass (triton
  stays: xgrammar requires it on linux x86_64).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from definemed.envs import canonical, read_env

CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
GPU_ONLY = re.compile(r"^(nvidia-.*|cuda-.*|vllm|flash-attn|flashinfer-.*)$")


def uv() -> str:
    found = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        raise SystemExit("uv not found: it is in requirements.txt (make setup)")
    return found


def name_of(spec: str) -> str:
    return canonical(re.split(r"[=<>!~ \[;]", spec.strip(), maxsplit=1)[0])


def cpu_torch(spec: str) -> str:
    """`torch==2.13.0` -> `torch==2.13.0+cpu` (a pin with a local version stays as it is)."""
    m = re.fullmatch(r"torch==([0-9][0-9A-Za-z.]*)(\+\w+)?", spec.strip())
    if not m:
        raise ValueError(f"torch must be pinned exactly (torch==X), not {spec!r}")
    return f"torch=={m.group(1)}+cpu"


def torch_fetch_command(torch: str, torch_index: str, wheel_dir: Path) -> list[str]:
    """pip downloads the CPU torch wheel alone (--no-deps: only torch is asked of the torch index;
    --retries 2: where it is unreachable pip warns and goes on within a second)."""
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "download", "--quiet", "--no-deps",
            "--retries", "2", "--extra-index-url", torch_index, "--dest", str(wheel_dir), torch]  # fmt: skip


def install_command(python: Path, requirements: Path, wheel_dir: Path, no_deps: bool = True) -> list[str]:
    # best match across PyPI and the wheel directory: the `+cpu` pin is found only in the latter
    return [uv(), "pip", "install", "--quiet", "--no-config", "--python", str(python),
            *(["--no-deps"] if no_deps else []), "--index-strategy", "unsafe-best-match",
            "--find-links", str(wheel_dir), "-r", str(requirements)]  # fmt: skip


def have_wheel(torch: str, wheel_dir: Path) -> bool:
    version = torch.split("==", 1)[1]
    return bool(glob.glob(str(wheel_dir / f"torch-{glob.escape(version)}-*.whl")))


def fetch_torch(torch: str, torch_index: str, wheel_dir: Path, dry_run: bool = False) -> None:
    """The CPU torch wheel into `wheel_dir` (once); raises TorchUnavailable where no index has it."""
    if have_wheel(torch, wheel_dir):
        return
    cmd = torch_fetch_command(torch, torch_index, wheel_dir)
    if dry_run:
        print(" ".join(cmd))
        return
    wheel_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not have_wheel(torch, wheel_dir):
        raise TorchUnavailable(f"{torch}: not found at {torch_index} nor in pip's configured wheel directories")


class TorchUnavailable(RuntimeError):
    pass


@dataclass
class Plan:
    """What a venv built from an env file installs, and what it leaves out."""

    pins: list[str]
    left_out: list[str]
    torch: str | None


def plan(env_file: Path) -> Plan:
    pins, left_out, torch = [], [], None
    for spec in read_env(env_file).pip:
        spec = spec.split("#", 1)[0].strip()
        if not spec or spec.startswith("-"):
            continue
        name = name_of(spec)
        if GPU_ONLY.match(name):
            left_out.append(spec)
            continue
        if name == "torch":
            spec = torch = cpu_torch(spec)
        pins.append(spec)
    return Plan(pins, left_out, torch)


def build_venv(env_file: Path, venv: Path, wheel_dir: Path, torch_index: str = CPU_TORCH_INDEX,
               dry_run: bool = False) -> Plan:  # fmt: skip
    """A venv at `venv` with the env file's pip list: torch's CPU build, GPU-only packages left out."""
    p = plan(env_file)
    if not dry_run:
        wheel_dir.mkdir(parents=True, exist_ok=True)
    if p.torch:
        fetch_torch(p.torch, torch_index, wheel_dir, dry_run)
    venv_cmd = [uv(), "venv", "--quiet", "--clear", "--python", sys.executable, str(venv)]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.write("\n".join(p.pins) + "\n")
    try:
        install = install_command(venv / "bin" / "python", Path(req.name), wheel_dir)
        check = [uv(), "pip", "check", "--quiet", "--python", str(venv / "bin" / "python")]
        for cmd in (venv_cmd, install, check):
            if dry_run:
                print(" ".join(cmd))
            else:
                subprocess.run(cmd, check=True)
        if dry_run:
            print("\n".join(p.pins))
    finally:
        os.unlink(req.name)
    return p
