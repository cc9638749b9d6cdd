"""Knowledge benchmarks through lm-evaluation-harness (paper 5.1, A.5, A.6; Tables 4, 9, 11).

A benchmark column of the paper is a config entry `benchmarks.tasks.<key>`: the lm-eval task that
defines its prompt, choices and metric, the table group it belongs to, and its item count. Tasks
with a `data` file run the shipped definition over that local JSONL through an `include:` override
(MedQA-de always; every task in the miniature), so prompt and subject filter stay lm-eval's own.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
from pathlib import Path
from typing import ClassVar

import yaml

from definemed.config import Settings

# --- which models make which table (derived from config, never listed in rules) -------------


def table_rows(config: dict, table: str) -> list[str]:
    """Model keys of Table 4 (medical), 9 (ablation) or 11 (general), in the paper's row order."""
    bench, runs = config["benchmarks"], config["cpt"]["runs"]
    finemed = [r for r, spec in runs.items() if spec["corpus"] == "finemed"]
    if table == "table4":
        rows = list(bench["baselines"]["medical"])
        for run in finemed:
            rows += [runs[run]["base"], run, f"{run}-slerp"]
        return rows
    if table == "table9":
        rows = []
        for ablation, spec in runs.items():
            if spec["corpus"] == "finemed":
                continue
            twin = next((r for r in finemed if runs[r]["base"] == spec["base"]), None)
            if twin is None:
                raise ValueError(f"config: ablation run {ablation!r} has no FineMed run on base {spec['base']!r}")
            rows += [spec["base"], twin, ablation, f"{twin}-slerp", f"{ablation}-slerp"]
        return rows
    if table == "table11":
        rows = list(bench["baselines"]["general"])
        for run in finemed:
            rows += [runs[run]["base"], run, f"{run}-slerp"]
        return rows
    raise ValueError(f"unknown table {table!r} (table4, table9, table11)")


def group_models(config: dict, group: str) -> list[str]:
    """Models evaluated on a task group: medical = Tables 4 and 9, general = Table 11."""
    tables = {"medical": ["table4", "table9"], "general": ["table11"]}[group]
    return list(dict.fromkeys(m for t in tables for m in table_rows(config, t)))


def group_tasks(config: dict, group: str) -> list[str]:
    return [k for k, spec in config["benchmarks"]["tasks"].items() if spec["group"] == group]


# --- lm-eval task definitions ------------------------------------------------------------------


def lm_eval_tasks_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent


def shipped_task_yaml(name: str) -> Path:
    """The YAML file of lm-eval's shipped task `name`, found without building lm-eval's whole task
    index (14,000+ YAMLs, ~30 s): files named after the task first, then a text scan; candidates
    are confirmed by parsing."""
    for path in sorted(_task_yamls(), key=lambda p: p.stem != name):
        text = path.read_text(encoding="utf-8", errors="replace")
        if name in text and (yaml.load(text, Loader=_LenientLoader) or {}).get("task") == name:
            return path
    raise ValueError(f"lm-eval {lm_eval_version()} has no shipped task {name!r}")


@functools.cache
def _task_yamls() -> tuple[Path, ...]:
    return tuple(sorted(lm_eval_tasks_dir().rglob("*.yaml")))


class _LenientLoader(yaml.SafeLoader):
    """Reads lm-eval YAMLs without executing their `!function` tags."""


_LenientLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def task_config(yaml_path: Path) -> dict:
    """A task YAML with the files it `include:`s merged in (its own keys win), as lm-eval does."""
    cfg = yaml.load(Path(yaml_path).read_text(encoding="utf-8"), Loader=_LenientLoader) or {}
    if "include" in cfg:
        cfg = {**task_config((Path(yaml_path).parent / cfg["include"]).resolve()), **cfg}
    return cfg


def task_splits(yaml_path: Path) -> set[str]:
    """Split names a task reads: all must point at the local file."""
    cfg = task_config(yaml_path)
    return {cfg[k] for k in ("training_split", "validation_split", "test_split", "fewshot_split") if cfg.get(k)}


def eval_split(yaml_path: Path) -> str:
    """The split lm-eval scores: test if the task has one, else validation (HellaSwag)."""
    cfg = task_config(yaml_path)
    return cfg.get("test_split") or cfg["validation_split"]


def override_task(key: str, spec: dict, data_file: Path, shipped: Path | None = None, name: str | None = None) -> dict:
    """An lm-eval task config that reuses the shipped task's prompt, choices, filters and metric
    on a local JSONL in the shipped column layout (every split the task names reads that file).
    `shipped`/`name`: a subject task of a group (local_group_configs), else the spec's own task."""
    shipped = shipped or shipped_task_yaml(spec["lm_eval_task"])
    task = {
        "include": str(shipped),
        "task": name or local_task_name(key),
        "tag": None,
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {s: portable_path(data_file) for s in sorted(task_splits(shipped))}},
    }
    task.update(spec.get("overrides", {}))
    return task


def shipped_group_yaml(name: str) -> Path | None:
    """The YAML of lm-eval's shipped group `name` (e.g. mmmlu_de_de), or None when `name` is a task."""
    for path in _task_yamls():
        if path.name.startswith("_") and name in path.read_text(encoding="utf-8", errors="replace"):
            if (yaml.load(path.read_text(encoding="utf-8"), Loader=_LenientLoader) or {}).get("group") == name:
                return path
    return None


def local_group_configs(key: str, spec: dict, data_file: Path, group_yaml: Path) -> dict[str, dict]:
    """A shipped group (its subgroups, tags and subject tasks, with its aggregation) rebuilt under
    local names, every subject task an include-override reading `data_file`: {file name: config}.
    The top group is named local_task_name(key). A group's members are looked up in its own folder."""
    top = local_task_name(key)
    folder = group_yaml.parent
    configs = {
        p: yaml.load(p.read_text(encoding="utf-8"), Loader=_LenientLoader) or {} for p in sorted(folder.glob("*.yaml"))
    }

    def local(name: str) -> str:
        return top if name == spec["lm_eval_task"] else f"{top}__{name}"

    out: dict[str, dict] = {}

    def visit(path: Path) -> str:
        cfg = configs[path]
        members = []
        for entry in cfg["task"]:
            if not isinstance(entry, str):
                raise ValueError(f"{path}: inline task definitions in a group are not supported")
            groups = [p for p, c in configs.items() if c.get("group") == entry]
            tasks = [p for p, c in configs.items() if c.get("task") == entry]
            tagged = [
                p
                for p, c in configs.items()
                if entry in ([c["tag"]] if isinstance(c.get("tag"), str) else c.get("tag") or [])
            ]
            if groups:
                members.append(visit(groups[0]))
            elif tasks or tagged:
                for leaf in tasks or tagged:
                    name = local(configs[leaf]["task"])
                    out[f"{name}.yaml"] = override_task(key, spec, data_file, shipped=leaf, name=name)
                    members.append(name)
            else:
                raise ValueError(f"{path}: group member {entry!r} is neither a group, a task nor a tag in {folder}")
        group = {k: v for k, v in cfg.items() if k not in ("group", "task")}
        out[f"{local(cfg['group'])}.yaml"] = {**group, "group": local(cfg["group"]), "task": members}
        return local(cfg["group"])

    visit(group_yaml)
    return out


def task_leaves(results: dict, name: str) -> list[str]:
    """The tasks lm-eval scored under `name`: itself, or a group's subject tasks in order."""
    children = results.get("group_subtasks", {}).get(name)
    if not children:
        return [name]
    return [leaf for child in children for leaf in task_leaves(results, child)]


def portable_path(path) -> str:
    """`path` relative to the working directory (the workflow's) when it lies below it, else
    absolute: lm-eval writes the data path into its results, which must not depend on where the
    repository was cloned."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def local_task_name(key: str) -> str:
    return f"definemed_{key}"


def lm_eval_version() -> str:
    from importlib.metadata import version

    return version("lm_eval")


# --- the locked dataset revisions ----------------------------------------------------------------


def cached_dataset_copies(repo: str, cache_dir) -> dict[str, list[Path]]:
    """Revision -> cached copies of Hub dataset `repo` in a datasets cache. datasets 5.2 keeps a
    Hub dataset at <cache>/<namespace>___<snake_case name>/<config id>/<version>/<commit sha>/
    (builder.py _relative_data_dir; the hash of a Hub dataset without a script is its commit)."""
    from datasets.naming import camelcase_to_snakecase

    parts = repo.split("/")
    parts[-1] = camelcase_to_snakecase(parts[-1])
    root = Path(cache_dir) / "___".join(parts)
    copies: dict[str, list[Path]] = {}
    for path in sorted(root.glob("*/*/*")):
        if path.is_dir():
            copies.setdefault(path.name, []).append(path)
    return copies


def check_locked_revisions(records: list[dict], cache_dir) -> None:
    """Refuse to evaluate unless every Hub dataset the tasks read is cached at exactly the lock's
    revision and at no other: offline, datasets finds a cached dataset by name and config and takes
    the newest copy whatever its revision (datasets/packaged_modules/cache/cache.py
    _find_hash_in_cache), and lm-eval passes no revision. `records`: fetch_lm_eval_dataset's
    records ({repo, revision, configs})."""
    for record in records:
        repo, locked = record["repo"], record["revision"]
        copies = cached_dataset_copies(repo, cache_dir)
        other = sorted(set(copies) - {locked})
        if other:
            raise ValueError(
                f"lm-eval dataset {repo}: the cache {cache_dir} holds revision(s) {', '.join(other)} beside the "
                f"lock's {locked} (inputs.lock.yaml); offline, datasets would read the newest copy, not the "
                f"lock's. Remove {', '.join(str(p) for r in other for p in copies[r])}"
            )
        if locked not in copies:
            raise ValueError(
                f"lm-eval dataset {repo}: no copy at the lock's revision {locked} in {cache_dir} "
                "(rule fetch_lm_eval_dataset fetches it)"
            )


# --- running and summarising -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BenchmarkSettings(Settings):
    """The benchmarks section as one model's evaluation job reads it (rules/helpers/benchmarks.smk:
    without its tasks, baselines and resources; the workflow's seed and chat template day added, and
    model_args.tensor_parallel_size under vLLM)."""

    SECTION: ClassVar[str] = "benchmarks"
    backend: str
    dtype: str
    batch_size: int | str
    model_args: dict
    num_fewshot: int | None
    apply_chat_template: bool
    tensor_parallel: dict
    seed: int = dataclasses.field(metadata={"schema": "seed"})
    chat_template_date: str = dataclasses.field(metadata={"schema": "chat_template_date"})


def check_backend_settings(bench: dict) -> None:
    """Refuse, before any job starts, what envs/benchmarks.yaml cannot run: lm-eval's vLLM data
    parallelism (model_args.data_parallel_size > 1) dispatches through ray, which the env does not
    carry (and which is known to hang); the workflow parallelises over jobs instead, one per model
    and task group, each on its model's tensor-parallel GPUs (benchmarks.tensor_parallel)."""
    args = bench.get("model_args") or {}
    dp = int(args.get("data_parallel_size", 1) or 1)
    if dp > 1:
        raise ValueError(
            f"benchmarks.model_args.data_parallel_size: {dp} is not supported: lm-eval's vLLM data parallelism "
            "needs ray, which envs/benchmarks.yaml does not carry; the workflow already runs one job per model "
            "and task group in parallel (GPUs per job: benchmarks.tensor_parallel). Remove it."
        )
    if "tensor_parallel_size" in args:
        raise ValueError(
            "benchmarks.model_args.tensor_parallel_size: set per model by benchmarks.tensor_parallel "
            "(the job requests that many GPUs); remove it from model_args"
        )


def evaluate(model_dir, tasks: dict, settings: BenchmarkSettings, work_dir) -> dict:
    """Run lm-eval on `tasks` ({key: spec with resolved `data` paths}) and return its results dict
    (with per-sample logs). Local-data tasks go through generated include-overrides."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    check_backend_settings(
        {"model_args": {k: v for k, v in settings.model_args.items() if k != "tensor_parallel_size"}}
    )
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    names, hub_tasks = {}, False
    for key, spec in tasks.items():
        if spec.get("data"):
            group = shipped_group_yaml(spec["lm_eval_task"])
            if group:  # e.g. German MMMLU: every subject task on the one local file, the group's aggregation
                files = local_group_configs(key, spec, spec["data"], group)
            else:
                files = {f"{local_task_name(key)}.yaml": override_task(key, spec, spec["data"])}
            for file, cfg in files.items():
                (work_dir / file).write_text(yaml.safe_dump(cfg, sort_keys=True))
            names[key] = local_task_name(key)
        else:
            names[key] = spec["lm_eval_task"]
            hub_tasks = True
    # Indexing lm-eval's own tasks costs ~30 s: only when a task is taken from it unchanged.
    manager = TaskManager(include_path=str(work_dir), include_defaults=hub_tasks)
    backend = settings.backend
    model_args = {"pretrained": str(model_dir), "dtype": settings.dtype, **settings.model_args}
    if backend == "hf":
        model_args.setdefault("device", "cuda" if _cuda() else "cpu")
    with lm_eval_template_day(settings):
        results = lm_eval.simple_evaluate(
            model=backend,
            model_args=model_args,
            tasks=[names[k] for k in tasks],
            num_fewshot=settings.num_fewshot,
            batch_size=settings.batch_size,
            apply_chat_template=settings.apply_chat_template,
            fewshot_as_multiturn=settings.apply_chat_template,
            task_manager=manager,
            log_samples=True,
            random_seed=settings.seed,
            numpy_random_seed=settings.seed,
            torch_random_seed=settings.seed,
            fewshot_random_seed=settings.seed,
        )
    results["definemed_task_names"] = names
    return results


def lm_eval_template_day(settings: BenchmarkSettings):
    """The clock lm-eval's chat templates read while it evaluates: with apply_chat_template, lm-eval
    renders each prompt itself (its hf and vllm backends call the tokenizer's apply_chat_template
    in this process), and a template that prints the date (Mistral-Small-3's `strftime_now`) would
    print today's. Rendered on definemed.chat's clock at `chat_template_date` instead, as labelling
    and generation are."""
    import contextlib

    from definemed.chat import template_clock

    if not settings.apply_chat_template:
        return contextlib.nullcontext()
    return template_clock(settings.chat_template_date)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def task_summary(results: dict, key: str, spec: dict, model: str, settings: BenchmarkSettings) -> dict:
    """One table cell: accuracy and standard error as lm-eval computed them, with everything that
    shapes the number (task hash, few-shot count, chat template, lm-eval version)."""
    name = results["definemed_task_names"][key]
    metric = spec["metric"]
    row = results["results"][name]
    if f"{metric}_stderr" not in {k.rsplit(",", 1)[0] for k in row}:
        raise KeyError(f"lm-eval results for task {name!r} have no metric {metric!r}: {sorted(row)}")
    flt = spec.get("filter", "none")
    # a group (MMMLU: 57 subject tasks) scores the sum of its tasks' items
    leaves = task_leaves(results, name)
    counts = results.get("n-samples", {})
    n = sum(counts[t]["effective"] for t in leaves) if all(t in counts for t in leaves) else None
    configs = results["configs"][name] if name in results["configs"] else {t: results["configs"][t] for t in leaves}
    hashes = {t: results.get("task_hashes", {}).get(t) for t in leaves}
    task_hash = hashes[name] if leaves == [name] else _digest(hashes) if any(hashes.values()) else None
    shots = {results["n-shot"].get(t) for t in leaves}
    return {
        "model": model,
        "task": key,
        "lm_eval_task": spec["lm_eval_task"],
        "lm_eval_task_run": name,
        "local_data": bool(spec.get("data")),
        "metric": metric,
        "filter": flt,
        "accuracy": row[f"{metric},{flt}"],
        "stderr": row[f"{metric}_stderr,{flt}"],
        "n": n,
        "items_expected": spec.get("items"),
        "num_fewshot": results["n-shot"].get(name, shots.pop() if len(shots) == 1 else None),
        "apply_chat_template": settings.apply_chat_template,
        **({"chat_template_date": settings.chat_template_date} if settings.apply_chat_template else {}),
        "backend": settings.backend,
        "dtype": settings.dtype,
        "lm_eval_version": lm_eval_version(),
        "task_hash": task_hash,
        "task_config_sha256": _digest(configs),
        "model_source": results.get("config", {}).get("model_source"),
    }


def _digest(obj) -> str:
    return hashlib.sha256(stable_json(obj).encode()).hexdigest()


def _stable(obj):
    """JSON stand-in for what lm-eval configs hold beyond JSON (functions, partials): their
    qualified names, never a memory address, so hashes and files are the same on every run."""
    if isinstance(obj, functools.partial):
        return {"partial": _stable(obj.func), "args": [_stable(a) for a in obj.args], "keywords": obj.keywords}
    if callable(obj):
        return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"
    return str(obj)


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def stable_json(obj, **kwargs) -> str:
    # lm-eval hands over some callables already as reprs (`<function f at 0x7f...>`): drop the address
    return _ADDRESS.sub("", json.dumps(obj, sort_keys=True, default=_stable, ensure_ascii=False, **kwargs))


def sample_scores(samples: list[dict], metric: str, flt: str = "none") -> list[float]:
    """Per-item metric values of lm-eval's sample log, in document order."""
    out = []
    for s in sorted(samples, key=lambda s: s["doc_id"]):
        if s.get("filter", "none") != flt:
            continue
        out.append(float(s[metric]))
    return out


def mean_and_stderr(values: list[float]) -> tuple[float, float]:
    """The mean and its standard error exactly as lm-eval's `mean_stderr` (sample std, ddof 1)."""
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((x - mean) ** 2 for x in values) / (n - 1)) / math.sqrt(n)
