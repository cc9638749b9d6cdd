"""Pinned external inputs: what a run reads from the Hugging Face Hub, the lock that pins each to a
commit, and the check that refuses a paper run with anything unpinned.

config.yaml says what a run needs (a repository and a revision, which may be a branch such as
`main`); `inputs.lock.yaml`, written by `make lock` (scripts/lock_inputs.py) with Hub access,
resolves every one to a commit SHA, lists the FineWeb2 files (the manifest, with size and sha256)
and the datasets lm-eval's Hub tasks read. The run reads revisions from the lock.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from definemed.io import sha256_file

LOCK_FILE = "inputs.lock.yaml"
LOCK_COMMAND = "make lock   (python scripts/lock_inputs.py, on a machine with Hub access)"
COMMIT = re.compile(r"[0-9a-f]{40}")
# huggingface_hub, datasets and transformers refuse every Hub request under these: set for every
# job except the fetch rules (rules/inputs.smk), so a compute job that would reach out fails loudly.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@dataclass(frozen=True)
class HubInput:
    section: str  # lock section: models, datasets
    key: str  # name inside the section (a model name, fineweb, medqa_de, medalpaca)
    repo: str
    repo_type: str  # model | dataset
    revision: str  # as config.yaml asks (a commit, or a branch/tag to resolve)
    where: str  # the config key that sets the revision


def is_commit(revision) -> bool:
    return bool(COMMIT.fullmatch(str(revision or "")))


def hub_inputs(config: dict) -> list[HubInput]:
    """Every Hub repository config.yaml makes the run read, except lm-eval's task datasets."""
    out = [
        HubInput("models", name, spec["hub"]["repo"], "model", spec["hub"]["revision"], f"models.{name}.hub.revision")
        for name, spec in config["models"].items()
        if "hub" in spec
    ]
    fineweb = config["fineweb"]
    if fineweb["source"] == "hub":
        out.append(HubInput("datasets", "fineweb", fineweb["repo"], "dataset", fineweb["revision"], "fineweb.revision"))
    medqa_tasks = [t for t in config["benchmarks"]["tasks"].values() if t.get("data") == "medqa_de"]
    if medqa_tasks and config.get("medqa_de", {}).get("source") == "translate":
        hub = config["medqa_de"]["hub"]
        out.append(HubInput("datasets", "medqa_de", hub["repo"], "dataset", hub["revision"], "medqa_de.hub.revision"))
    if "judges" in config and config.get("medalpaca", {}).get("source") == "hub":
        hub = config["medalpaca"]["hub"]
        out.append(HubInput("datasets", "medalpaca", hub["repo"], "dataset", hub["revision"], "medalpaca.hub.revision"))
    return out


def hub_tasks(config: dict) -> dict[str, str]:
    """benchmarks.tasks key -> lm-eval task name, for the tasks that read lm-eval's own Hub data."""
    return {k: t["lm_eval_task"] for k, t in config["benchmarks"]["tasks"].items() if t.get("data") == "hub"}


def read_lock(path) -> dict:
    """The lock, or an empty one when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return {}
    lock = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(lock, dict):
        raise ValueError(f"{path}: not a mapping")
    return lock


def locked_revision(lock: dict, item: HubInput) -> str | None:
    """The commit the lock pins `item` to, if the lock's entry is for the same repository and
    the same requested revision (a stale entry pins nothing)."""
    entry = lock.get(item.section, {}).get(item.key)
    if not entry or entry.get("repo") != item.repo or entry.get("requested") != item.revision:
        return None
    return entry["revision"] if is_commit(entry.get("revision")) else None


def pinned_revision(lock: dict, item: HubInput) -> str:
    """The commit a fetch rule downloads: config's own SHA, else the lock's; else config's
    revision unchanged (a paper run refuses to start then, see `input_problems`)."""
    if is_commit(item.revision):
        return item.revision
    return locked_revision(lock, item) or item.revision


def lm_eval_repo_slug(repo: str) -> str:
    """A file name for a dataset repository (`cais/mmlu` -> `cais--mmlu`), as the Hub cache does."""
    return repo.replace("/", "--")


def input_problems(config: dict, lock: dict, lock_path=LOCK_FILE) -> list[str]:
    """Everything that keeps a paper run from reading pinned inputs: one line per input."""
    problems = []
    for item in hub_inputs(config):
        if not is_commit(pinned_revision(lock, item)):
            problems.append(
                f"{item.where}: {item.repo} at {item.revision!r} is not a commit and {lock_path} does not pin it"
            )
    fineweb = config["fineweb"]
    if fineweb["source"] == "hub":
        problems += manifest_problems(config, lock, lock_path)
    tasks = lock.get("lm_eval", {}).get("tasks", {})
    datasets = lock.get("lm_eval", {}).get("datasets", {})
    for key, task in hub_tasks(config).items():
        if task not in tasks:
            problems.append(
                f"benchmarks.tasks.{key}: the datasets of lm-eval task {task!r} are not pinned in {lock_path}"
            )
            continue
        for repo in tasks[task]:
            if not is_commit(datasets.get(repo, {}).get("revision")):
                problems.append(f"benchmarks.tasks.{key}: {lock_path} has no commit for dataset {repo!r} ({task})")
    return problems


def manifest_problems(config: dict, lock: dict, lock_path=LOCK_FILE) -> list[str]:
    """The FineWeb2 manifest must be the one the lock command wrote at the run's revision: every
    file of the split with size and sha256 (a subset is `fineweb.shard_subset`, a setting)."""
    from definemed.dataset.fineweb import read_manifest

    fineweb = config["fineweb"]
    manifest = fineweb["manifest"]
    entry = lock.get("datasets", {}).get("fineweb", {})
    rows = read_manifest(manifest)
    unverified = sum(1 for r in rows if r.size is None or r.sha256 is None)
    revision = pinned_revision(lock, next(i for i in hub_inputs(config) if i.key == "fineweb"))
    if entry.get("manifest") != manifest or entry.get("manifest_sha256") != sha256_file(manifest):
        return [
            f"fineweb.manifest: {manifest} is partial or not the lock's ({len(rows)} files listed,"
            f" {unverified} without size and sha256); {lock_path} does not list it as the complete"
            f" file list of {fineweb['repo']} at {revision}"
        ]
    if entry.get("revision") != revision:
        return [f"fineweb.manifest: {manifest} lists revision {entry.get('revision')}, the run reads {revision}"]
    if unverified:
        return [f"fineweb.manifest: {manifest}: {unverified} of {len(rows)} files without size and sha256"]
    return []


def refusal_message(problems: list[str], config_name="config.yaml", dry_run: bool = False) -> str:
    """Why a paper run refuses to start (once, in onstart), or, for a dry run, which plans offline
    anyway, the warning that a real run would refuse."""
    lines = "\n".join(f"  - {p}" for p in problems)
    outcome = "a real run would refuse to start (this dry run only plans)" if dry_run else "nothing was submitted"
    return (
        f"{config_name}: the paper run reads inputs that are not pinned; {outcome}.\n{lines}\n"
        f"Fix: {LOCK_COMMAND}, then commit {LOCK_FILE} and the manifest it rewrites."
        " A deliberate trial on fewer FineWeb2 files is `fineweb.shard_subset: N` (after the lock)."
    )


# --- lm-eval: which Hub datasets a task reads ----------------------------------------------------


def lm_eval_datasets(task: str, index=None) -> list[dict]:
    """The Hub datasets lm-eval task (or group, or tag) `task` reads, from lm-eval's own task index
    without loading anything: [{repo, config, kwargs}] for every leaf task, deduplicated."""
    if index is None:
        from lm_eval.tasks import TaskManager

        index = TaskManager().task_index
    found: dict[tuple, dict] = {}
    _walk(task, {}, index, found, seen=set())
    return sorted(found.values(), key=lambda d: (d["repo"], str(d["config"])))


def _walk(name, overrides, index, found, seen):
    from lm_eval.tasks._index import Kind

    if name in seen:
        return
    seen.add(name)
    entry = index.get(name)
    if entry is None:
        raise ValueError(f"lm-eval has no task, group or tag {name!r}")
    if entry.kind == Kind.TAG:
        for member in sorted(entry.tags):
            _walk(member, overrides, index, found, seen)
        return
    cfg = {**(entry.cfg or {}), **overrides}
    if entry.kind == Kind.GROUP:
        for member in cfg.get("task", []):
            if isinstance(member, dict):
                sub = {k: v for k, v in member.items() if k not in ("task", "group")}
                _walk(member.get("task") or member.get("group"), {**overrides, **sub}, index, found, seen)
            else:
                _walk(member, overrides, index, found, seen)
        return
    repo = cfg.get("dataset_path")
    if not repo:
        raise ValueError(f"lm-eval task {name!r} names no dataset_path")
    kwargs = cfg.get("dataset_kwargs") or {}
    spec = {"repo": repo, "config": cfg.get("dataset_name"), "kwargs": kwargs}
    found[(repo, str(spec["config"]), yaml.safe_dump(kwargs, sort_keys=True))] = spec


# --- writing the lock (needs the Hub) ------------------------------------------------------------


def manifest_text(repo: str, revision: str, language: str, split: str, files) -> str:
    """The FineWeb2 manifest TSV for `files` (huggingface_hub RepoFile entries with LFS metadata)."""
    lines = [
        f"# {repo} ({language}), revision {revision}: all {len(files)} {split} files, written by make lock.",
        "shard\tpath\tsize\tsha256",
    ]
    for f in files:
        if getattr(f, "lfs", None) is None:
            raise ValueError(f"{repo}@{revision}: {f.path} has no LFS sha256 in the Hub's listing")
        name = f"{split}-" + f.path.rsplit("/", 1)[1].removesuffix(".parquet")
        lines.append(f"{name}\t{f.path}\t{f.lfs.size}\t{f.lfs.sha256}")
    return "\n".join(lines) + "\n"


class LockError(ValueError):
    """An input of the config that the Hub does not have (the config key and repository named)."""


def _resolve(info_of, item: HubInput) -> str:
    """The commit `item.revision` of `item.repo` on the Hub; a revision or repository the Hub does
    not know raises LockError naming the config key that asks for it."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        return info_of(item.repo, revision=item.revision).sha
    except RevisionNotFoundError as e:
        raise LockError(
            f"{item.where}: revision {item.revision!r} of {item.repo_type} {item.repo} ({item.section}.{item.key})"
            f" is not on the Hub ({type(e).__name__}). Set {item.where} to a commit, branch or tag of {item.repo}"
            f" (its commits: https://huggingface.co/{'datasets/' if item.repo_type == 'dataset' else ''}{item.repo}"
            "/commits/main), then run make lock again"
        ) from e
    except RepositoryNotFoundError as e:  # also a gated or private repository without a token
        raise LockError(
            f"{item.where}: {item.repo_type} repository {item.repo} ({item.section}.{item.key}) is not on the Hub,"
            f" or not readable with this token (HF_TOKEN) ({type(e).__name__}). Correct the repository in the"
            " config or request access, then run make lock again"
        ) from e


def build_lock(config: dict, api, task_index=None, language="deu_Latn", split="train") -> tuple[dict, str | None]:
    """Resolve every Hub input of `config` with huggingface_hub's API (`api`: an HfApi). Returns
    the lock and, for a Hub FineWeb2, the manifest text listing every file of the split."""
    lock: dict = {"models": {}, "datasets": {}}
    manifest = None
    for item in hub_inputs(config):
        info_of = api.model_info if item.repo_type == "model" else api.dataset_info
        sha = _resolve(info_of, item)
        lock[item.section][item.key] = {"repo": item.repo, "requested": item.revision, "revision": sha}
        if item.key == "fineweb":
            folder = f"data/{language}/{split}"
            files = sorted(
                (
                    f
                    for f in api.list_repo_tree(
                        item.repo, path_in_repo=folder, repo_type="dataset", revision=sha, expand=True
                    )
                    if f.path.endswith(".parquet")
                ),
                key=lambda f: f.path,
            )
            if not files:
                raise ValueError(f"{item.repo}@{sha}: no parquet files under {folder}")
            manifest = manifest_text(item.repo, sha, language, split, files)
            lock["datasets"]["fineweb"].update(
                manifest=config["fineweb"]["manifest"],
                manifest_sha256=hashlib.sha256(manifest.encode()).hexdigest(),
                files=len(files),
                bytes=sum(f.lfs.size for f in files),
            )
    tasks = hub_tasks(config)
    if tasks:
        from definemed.evaluation.benchmarks import lm_eval_version

        lm: dict = {"lm_eval_version": lm_eval_version(), "tasks": {}, "datasets": {}}
        if task_index is None:  # indexing lm-eval's tasks costs 5-9 s: once for all tasks
            from lm_eval.tasks import TaskManager

            task_index = TaskManager().task_index
        for task in sorted(set(tasks.values())):
            specs = lm_eval_datasets(task, task_index)
            lm["tasks"][task] = sorted({s["repo"] for s in specs})
            for s in specs:
                entry = lm["datasets"].setdefault(s["repo"], {"requested": "main", "configs": []})
                cfg = {"name": s["config"], "kwargs": s["kwargs"]}
                if cfg not in entry["configs"]:
                    entry["configs"].append(cfg)
        for repo, entry in lm["datasets"].items():
            entry["revision"] = api.dataset_info(repo, revision="main").sha
            entry["configs"].sort(key=lambda c: str(c["name"]))
        lock["lm_eval"] = lm
    return lock, manifest


def lock_text(lock: dict) -> str:
    return (
        "# Every external input of config.yaml pinned to a commit (definemed/inputs.py). Written by\n"
        f"# {LOCK_COMMAND}; the run reads revisions from here. Do not edit by hand.\n"
        + yaml.safe_dump(lock, sort_keys=True, allow_unicode=True, width=120)
    )
