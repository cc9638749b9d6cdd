"""The lint checks are pre-commit hooks (.pre-commit-config.yaml) and `make lint` (CI) runs them, so
the hooks cannot rot: these tests hold the hooks to the four checks `make lint` always ran, each over
the whole tree, each with an executable that requirements.txt installs into .venv, and each chosen
by the files its tool reads (a hook whose filter matches no file is skipped, even by --all-files)."""

import re
import subprocess
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import yaml
from identify.identify import tags_from_path

REPO = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())

# what `make lint` ran before it ran the hooks, in its order; each reads the whole tree
CHECKS = [
    ".venv/bin/snakemake --lint",
    ".venv/bin/snakefmt --check .",
    ".venv/bin/ruff check .",
    ".venv/bin/ruff format --check .",
]


def hooks():
    [repo] = CONFIG["repos"]
    assert repo["repo"] == "local", "hooks from a hook repository would need the network and other tool versions"
    return repo["hooks"]


def command(hook):
    return " ".join([hook["entry"], *hook.get("args", [])])


def requirement_names():
    names = set()
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0])
    return names


def test_hooks_are_the_checks_of_make_lint_over_the_whole_tree():
    assert [command(h) for h in hooks()] == CHECKS
    for hook in hooks():
        assert hook["language"] in ("system", "unsupported"), hook["id"]
        # file names passed on would narrow the check to the files pre-commit picked
        assert hook.get("pass_filenames") is False, hook["id"]


def test_make_lint_runs_the_hooks():
    dry = subprocess.run(["make", "-n", "lint"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert re.search(r"/pre-commit run --all-files$", dry, re.M), dry


def test_hook_executables_come_from_requirements_txt():
    names = requirement_names()
    assert "pre-commit" in names, "make lint runs pre-commit from .venv"
    assert re.search(r"^pre-commit==\S+$", (REPO / "requirements.txt").read_text(), re.M), "pin it, like the stack"
    installed = {}
    for name in names:
        try:
            files = distribution(name).files or []
        except PackageNotFoundError:
            continue
        for f in files:
            if f.parent.name == "bin":
                installed[f.name] = name
    for hook in hooks():
        exe = Path(hook["entry"].split()[0])
        assert exe.parent == Path(".venv/bin"), f"{hook['id']}: the venv's own {exe.name}"
        assert exe.name in installed, f"{hook['id']}: no requirement in requirements.txt installs {exe.name}"


def selected(hook, path):
    """pre-commit's documented file filter: `files`/`exclude` (re.search), `types` (all of),
    `types_or` (any of), `exclude_types` (none of); defaults select every file."""
    if not re.search(hook.get("files", ""), path) or re.search(hook.get("exclude", "^$"), path):
        return False
    tags = tags_from_path(str(REPO / path))
    return (
        set(hook.get("types", ["file"])) <= tags
        and (not hook.get("types_or") or bool(tags & set(hook["types_or"])))
        and not tags & set(hook.get("exclude_types", []))
    )


def test_each_hook_runs_when_a_file_its_tool_reads_changes():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    tracked = [p for p in tracked.splitlines() if (REPO / p).is_file()]
    reads = {
        "snakefmt": [p for p in tracked if Path(p).name == "Snakefile" or p.endswith(".smk")],
        # ruff check reads pyproject.toml too, ruff format the Python blocks of Markdown files
        "ruff": [p for p in tracked if p.endswith((".py", ".md")) or p == "pyproject.toml"],
        "ruff-format": [p for p in tracked if p.endswith((".py", ".md")) or p == "pyproject.toml"],
    }
    assert all(reads.values())
    by_id = {h["id"]: h for h in hooks()}
    assert by_id["snakemake-lint"].get("always_run") is True, "the workflow's lint reads config, schemas and code"
    for hook_id, paths in reads.items():
        missed = [p for p in paths if not selected(by_id[hook_id], p)]
        assert not missed, f"{hook_id} would not run for {missed[:5]}"
