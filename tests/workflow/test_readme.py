"""The README's commands as written: every command of its ```bash blocks runs in a fresh shell that
did only the documented set-up (`make setup`, then `source .venv/bin/activate`), in a scratch copy of
the repository. Paper-run commands run as dry runs (`-n`, offline); the miniature's run for real on
a copy of the finished miniature; what cannot run here is on NOT_HERE with its reason, printed."""

import os
import re
import shutil
import subprocess

from conftest import REPO, copy_repo

README = REPO / "README.md"

SLURM_RUN = (
    "a Slurm cluster with conda: tests/workflow/test_slurm.py plans the paper run through this profile "
    "(`-n --sdm env-modules`: no conda here) and runs a part of the miniature through a local Slurm"
)
AFTER_RESULTS = (
    "needs the paper run's results (it redraws from them): tests/paper/test_paper.py runs the same "
    "--allowed-rules commands on the miniature's"
)
# command (as the README writes it, comment stripped) -> why it does not run here
NOT_HERE = {
    "make miniature": "the miniature end to end: `make test` runs it (tests/conftest.py's `miniature`)",
    "make test": "this suite",
    "make lock": "needs the Hub: tests/test_inputs.py runs it against a local stand-in Hub",
    "snakemake --profile profiles/slurm": SLURM_RUN,
    "snakemake --profile slurm": SLURM_RUN,
    "snakemake --allowed-rules figure4 -- paper/figures/figure4.pdf": AFTER_RESULTS,
    "snakemake --allowed-rules table2 table5 table8 figure4 figure5 reproduction_report -- paper/tables/table2.md": (
        AFTER_RESULTS
    ),
    'git add inputs.lock.yaml data/fineweb2-deu_Latn.manifest.tsv && git commit -m "Lock inputs"': (
        "commits what `make lock` wrote"
    ),
}
PLACEHOLDER = re.compile(r"<[^>]+>")  # <account>: the reader's own value


def readme_commands() -> list[tuple[int, str]]:
    """(line, command) of every line of the README's ```bash blocks, its comment removed."""
    commands, inside = [], False
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        command = re.sub(r"(^|\s+)#\s.*$", "", line).strip()
        if inside and command:
            commands.append((number, command))
    return commands


def is_miniature(command: str) -> bool:
    return "profiles/miniature" in command or command.startswith("python scripts/check_determinism.py")


def as_dry_run(command: str) -> str:
    """A paper-run snakemake command planned, not run (its targets after a `--` stay last)."""
    if not command.startswith("snakemake"):
        return command
    head, sep, targets = command.partition(" -- ")
    return f"{head} -n{sep}{targets}"


def fresh_shell(command: str, cwd, home) -> subprocess.CompletedProcess:
    """`command` in a new bash that entered the venv as the README says, with a clean environment."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    return subprocess.run(
        ["bash", "-c", f"set -e; source .venv/bin/activate; {command}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def scratch(tmp_path):
    work = copy_repo(tmp_path / "repo")
    (work / ".venv").symlink_to(REPO / ".venv")
    home = tmp_path / "home"
    home.mkdir()
    return work, home


def check(proc, line, command):
    assert proc.returncode == 0, f"README line {line}: {command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_the_readme_says_how_to_enter_the_venv_and_every_command_is_classified():
    commands = readme_commands()
    assert any(c == "source .venv/bin/activate" for _, c in commands), "the README must say how to enter the venv"
    listed = {c for _, c in commands}
    assert set(NOT_HERE) <= listed, f"NOT_HERE names commands the README no longer shows: {set(NOT_HERE) - listed}"


def test_the_readmes_paper_run_commands_plan_as_written(tmp_path, capsys):
    """Each paper-run command in a fresh shell (snakemake ones as dry runs): about 10 s each."""
    work, home = scratch(tmp_path)
    ran = []
    for line, command in readme_commands():
        if command == "source .venv/bin/activate" or is_miniature(command) or command in ran:
            continue
        if command in NOT_HERE or PLACEHOLDER.search(command):
            why = NOT_HERE.get(command, "a placeholder for the reader's own value")
            with capsys.disabled():
                print(f"\nREADME line {line} not run here: {command}  ({why})")
            continue
        proc = fresh_shell(as_dry_run(command), work, home)
        check(proc, line, command)
        ran.append(command)
    assert {"make install-profile", "make plan", "snakemake -n"} <= set(ran)


def test_the_readmes_miniature_commands_run_as_written(miniature, tmp_path):
    """Each miniature command for real in a fresh shell, on a copy of the finished miniature: the
    redraw reruns figure4 (and only it), the report is written, the determinism check compares."""
    work, home = scratch(tmp_path)
    shutil.copytree(miniature, work / "miniature", ignore=shutil.ignore_patterns("work"), symlinks=True)
    # without Snakemake's records, as a user's copied results: only dates decide (the records of a
    # CI miniature run through --sdm conda would rerun everything in a shell without it)
    for run in ("runA", "runB"):  # the determinism command's two clones
        (work / run).mkdir()
        (work / run / "miniature").symlink_to(work / "miniature")
    figure = work / "miniature/paper/figures/figure4.pdf"
    before = figure.stat().st_mtime_ns
    commands = [(line, c) for line, c in readme_commands() if is_miniature(c)]
    assert len(commands) >= 5, commands
    for line, command in commands:
        proc = fresh_shell(command, work, home)
        check(proc, line, command)
        if "--forcerun figure4" in command:
            assert figure.stat().st_mtime_ns > before, "the redraw did not redraw figure 4"
            assert "rule figure4:" in proc.stdout + proc.stderr
            assert "rule train_cpt:" not in proc.stdout + proc.stderr
    assert (work / "miniature/report.html").stat().st_size > 100_000
