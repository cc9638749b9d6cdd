"""Knowledge benchmarks (paper 5.1, A.6; Tables 4, 9, 11) through lm-evaluation-harness."""

import json
import math
import re

import pytest
from conftest import REPO
from lm_eval.api.metrics import pooled_sample_stderr

from definemed.config import display_name, load
from definemed.evaluation.benchmarks import (
    eval_split,
    group_models,
    mean_and_stderr,
    portable_path,
    sample_scores,
    shipped_task_yaml,
    stable_json,
    table_rows,
)
from definemed.evaluation.medqa import check_rows, seeded_sample
from definemed.io import write_jsonl
from definemed.miniature.benchmark_fixtures import LETTERS, fixture_items

PAPER = load(REPO / "config.yaml")

# Cells of the paper's tables (accuracy ± standard error, in %), as printed.
REPORTED = {
    "anatomy": [(44.44, 4.29), (66.67, 4.07), (57.78, 4.27)],
    "clinical_knowledge": [(52.08, 3.07), (78.87, 2.51), (65.28, 2.93)],
    "college_medicine": [(40.46, 3.74), (73.41, 3.37), (55.49, 3.79)],
    "medqa_de": [(37.20, 2.16), (68.80, 2.07), (46.80, 2.23)],
    "mmlu": [(46.87, 0.41), (71.95, 0.35), (63.35, 0.39)],
    "arc_challenge": [(40.96, 1.44), (64.08, 1.40), (51.28, 1.46)],
    "arc_easy": [(63.43, 0.99), (80.98, 0.81), (68.81, 0.95)],
    "gsm8k": [(2.35, 0.42), (64.97, 1.31), (58.23, 1.36)],
    "hellaswag": [(54.00, 0.50), (71.96, 0.45), (61.05, 0.49)],
}


def test_table_rows_are_the_papers():
    names = {t: [display_name(PAPER, m) for m in table_rows(PAPER, t)] for t in ("table4", "table9", "table11")}
    assert names["table4"] == [
        "BioMistral-7B",
        "BioMistral-7B-SLERP",
        "Mistral-7B-Instruct-v0.3",
        "DeFineMed-Mistral-7B",
        "DeFineMed-Mistral-7B-SLERP",
        "Qwen2.5-7B-Instruct",
        "DeFineMed-Qwen2.5-7B",
        "DeFineMed-Qwen2.5-7B-SLERP",
        "Mistral-Small-24B-Instruct",
        "DeFineMed-Mistral-Small-24B",
        "DeFineMed-Mistral-Small-24B-SLERP",
    ]
    assert names["table9"] == [
        "Qwen2.5-7B-Instruct",
        "DeFineMed-Qwen2.5-7B",
        "FineWeb2-Qwen2.5-7B",
        "DeFineMed-Qwen2.5-7B-SLERP",
        "FineWeb2-Qwen2.5-7B-SLERP",
    ]
    assert len(names["table11"]) == 10 and names["table11"][0] == "BioMistral-7B-SLERP"
    assert len(group_models(PAPER, "medical")) == 13 and len(group_models(PAPER, "general")) == 10


def test_paper_dag_has_one_job_per_model_and_group(paper_dry_run):
    out = paper_dry_run.stdout
    counts = dict(re.findall(r"^(benchmark_(?:medical|general))\s+(\d+)$", out, re.M))
    assert counts == {"benchmark_medical": "13", "benchmark_general": "10"}, out[-2000:]


@pytest.mark.parametrize("task", sorted(REPORTED))
def test_reported_standard_errors_imply_the_configured_item_counts(task):
    """The paper's ± are binomial standard errors over the full test sets: with the configured
    item count, sqrt(p(1-p)/(n-1)) gives the printed value (MMLU: lm-eval's pooled group error,
    a little smaller)."""
    n = PAPER["benchmarks"]["tasks"][task]["items"]
    for acc, se in REPORTED[task]:
        p = acc / 100
        assert abs(100 * math.sqrt(p * (1 - p) / (n - 1)) - se) <= (0.04 if task == "mmlu" else 0.011), (task, acc)
    # and a German variant's size would not: MGSM has 250 items, HellaSwag-de about 9,979
    if task == "gsm8k":
        assert abs(100 * math.sqrt(0.0235 * 0.9765 / 249) - 0.42) > 0.3


def test_paper_tasks_resolve_offline_to_lm_eval_definitions():
    for key, spec in PAPER["benchmarks"]["tasks"].items():
        if spec["lm_eval_task"] == "mmmlu_de_de":  # a group of 57 German subject tasks, each on the test split
            assert eval_split(shipped_task_yaml("mmmlu_de_de_anatomy")) == "test"
            continue
        split = eval_split(shipped_task_yaml(spec["lm_eval_task"]))
        # HellaSwag's labelled split is validation (10,042 items): the paper's ± fit it
        assert split == ("validation" if key == "hellaswag" else "test"), key


def test_fixture_items_are_well_formed():
    for layout, area in [("mmmlu", "anatomy"), ("medqa", "medqa")]:
        rows = fixture_items(layout, seed=7, area=area)
        assert rows == fixture_items(layout, seed=7, area=area)  # seeded
        for r in rows:
            options = [r[x] for x in LETTERS] if layout == "mmmlu" else [r[f"ending{i}"] for i in range(4)]
            assert len(set(options)) == 4
        if layout == "medqa":
            check_rows(rows, "fixture")
        else:  # the file holds every subject; lm-eval's filter must pick one
            assert {r["Subject"] for r in rows} == {"anatomy", "clinical_knowledge", "college_medicine"}
    for layout in ("mmlu", "arc", "hellaswag", "gsm8k"):
        rows = fixture_items(layout, seed=7, count=12)
        assert len(rows) == 12
    gold = [int(r["label"]) for r in fixture_items("hellaswag", seed=7, count=24)]
    assert len(set(gold)) > 1  # the answer position varies


def test_medqa_rows_are_checked_with_file_and_row_named():
    good = fixture_items("medqa", seed=1, area="medqa")
    bad = [dict(r) for r in good]
    bad[3].pop("ending2")
    with pytest.raises(ValueError, match=r"my\.jsonl: row 4 lacks column\(s\) \['ending2'\]"):
        check_rows(bad, "my.jsonl")
    bad = [dict(r) for r in good]
    bad[0]["label"] = 4
    with pytest.raises(ValueError, match="row 1 has label 4"):
        check_rows(bad, "my.jsonl")
    sample = seeded_sample(good, 5, seed=3)
    assert sample == seeded_sample(good, 5, seed=3) and len({r["id"] for r in sample}) == 5


def test_miniature_benchmarks_recompute_from_their_sample_logs(miniature, miniature_config):
    cfg = miniature_config
    tasks = cfg["benchmarks"]["tasks"]
    seen = 0
    for group in ("medical", "general"):
        for model in group_models(cfg, group):
            for key, spec in tasks.items():
                if spec["group"] != group:
                    continue
                result = json.loads((miniature / "results" / "benchmarks" / model / f"{key}.json").read_text())
                samples = [
                    json.loads(line)
                    for line in (miniature / "results" / "benchmarks" / model / f"{key}.samples.jsonl").open()
                ]
                values = sample_scores(samples, spec["metric"], spec["filter"])
                assert len(values) == result["n"] == spec["items"], (model, key)
                acc, se = mean_and_stderr(values)
                if "task" in samples[0]:  # a group (German MMMLU): lm-eval pools its tasks' errors
                    parts = [
                        sample_scores([x for x in samples if x["task"] == t], spec["metric"], spec["filter"])
                        for t in dict.fromkeys(x["task"] for x in samples)
                    ]
                    se = pooled_sample_stderr([mean_and_stderr(v)[1] for v in parts], [len(v) for v in parts])
                assert result["accuracy"] == pytest.approx(acc, abs=1e-12), (model, key)
                assert result["stderr"] == pytest.approx(se, abs=1e-12), (model, key)
                assert result["apply_chat_template"] is False and result["num_fewshot"] == 0
                assert result["lm_eval_version"] == "0.4.13" and len(result["task_config_sha256"]) == 64
                seen += 1
    # four medical columns for the 13 rows of Tables 4 and 9 (3 bases, 4 CPT models, 4 merges, the
    # BioMistral pair), four general ones for Table 11's 10 (no random-CPT rows, BioMistral-SLERP only)
    assert seen == 4 * 13 + 4 * 10


def test_results_do_not_depend_on_the_clone_path_or_process(tmp_path, monkeypatch):
    """What lm-eval records (data paths, reprs of callables) must not name the clone's folder or a
    memory address, or two runs from scratch in different folders differ byte by byte."""
    import functools

    def _filter_subject(docs, subject):
        return docs

    monkeypatch.chdir(tmp_path)
    assert portable_path(tmp_path / "miniature" / "a.jsonl") == "miniature/a.jsonl"
    assert portable_path("/elsewhere/a.jsonl") == "/elsewhere/a.jsonl"
    part = functools.partial(_filter_subject, subject="anatomy")
    cfg = {"process_docs": repr(part), "fn": part, "x": [1, "y"]}
    text = stable_json(cfg)
    assert " at 0x" not in text and "subject='anatomy'" in text, text
    assert stable_json({"f": "<function f at 0x7f4e4af9b600>"}) == stable_json({"f": "<function f at 0x7f18476>"})


# ---------------------------------------------------------------- German MMMLU (Table 11's MMLU column)


def test_mmmlu_fixture_and_lm_eval_share_the_57_subjects():
    from definemed.evaluation.benchmarks import lm_eval_tasks_dir
    from definemed.miniature.benchmark_fixtures import MMLU_SUBJECTS

    shipped = json.loads((lm_eval_tasks_dir() / "openai-mmmlu" / "subjects.json").read_text())
    assert list(MMLU_SUBJECTS) == list(shipped) and len(MMLU_SUBJECTS) == 57
    rows = fixture_items("mmmlu", seed=7, area="all", count=2)
    per_subject = {s: sum(r["Subject"] == s for r in rows) for s in MMLU_SUBJECTS}
    assert min(per_subject.values()) >= 2  # lm-eval's standard error needs two items per subject


def test_paper_mmlu_column_is_german_mmmlu_with_every_subject(tmp_path):
    """A.6's MMMLU: lm-eval's group mmmlu_de_de, rebuilt locally as it is shipped: 57 subject tasks
    (every one on the test split, each filtering its subject) under the four category groups."""
    from definemed.evaluation.benchmarks import local_group_configs, shipped_group_yaml

    spec = PAPER["benchmarks"]["tasks"]["mmlu"]
    assert (spec["lm_eval_task"], spec["items"]) == ("mmmlu_de_de", 14042)
    group = shipped_group_yaml("mmmlu_de_de")
    configs = local_group_configs("mmlu", spec, tmp_path / "mmlu.jsonl", group)
    leaves = {n: c for n, c in configs.items() if "include" in c}
    groups = {n: c for n, c in configs.items() if "group" in c}
    assert len(leaves) == 57 and len(groups) == 5
    assert groups["definemed_mmlu.yaml"]["aggregate_metric_list"][0] == {"metric": "acc", "weight_by_size": True}
    for name, cfg in leaves.items():
        assert eval_split(cfg["include"]) == "test"
        assert cfg["dataset_kwargs"]["data_files"]["test"].endswith("mmlu.jsonl")
        assert cfg["include"].endswith(name.replace("definemed_mmlu__", "").replace(".yaml", ".yaml"))
    assert shipped_group_yaml("mmmlu_de_de_anatomy") is None  # a task, not a group


def test_german_mmmlu_group_runs_offline_on_the_fixture(tmp_path, miniature):
    """The miniature's MMLU column: the shipped group's 57 subject filters over one local file in
    MMMLU's layout; lm-eval's group accuracy is the mean over all items, its n their sum."""
    from definemed.evaluation.benchmarks import BenchmarkSettings, evaluate, task_leaves, task_summary

    rows = fixture_items("mmmlu", seed=3, area="all", count=2)
    data = tmp_path / "mmlu.jsonl"
    write_jsonl(data, rows)
    spec = {"lm_eval_task": "mmmlu_de_de", "group": "general", "metric": "acc", "filter": "none",
            "items": len(rows), "data": str(data)}  # fmt: skip
    settings = BenchmarkSettings.from_config({"backend": "hf", "dtype": "float32", "batch_size": 8, "num_fewshot": None,
                                              "apply_chat_template": False, "seed": 1})  # fmt: skip
    results = evaluate(miniature / "models" / "tiny-qwen2.5-7b-instruct", {"mmlu": spec}, settings, tmp_path / "w")
    summary = task_summary(results, "mmlu", spec, "tiny", settings)
    # the 110 general facts round-robin over the 54 general subjects, 2 items for each of the 3 medical ones
    assert summary["n"] == len(rows) == 116
    leaves = task_leaves(results, "definemed_mmlu")
    assert len(leaves) == 57
    scores = [float(s["acc"]) for leaf in leaves for s in results["samples"][leaf]]
    assert summary["accuracy"] == pytest.approx(sum(scores) / len(scores), abs=1e-12)

    # lm-eval pools a group's error over its leaf tasks (evaluator_utils: "from leaf tasks")
    stderrs = [results["results"][leaf]["acc_stderr,none"] for leaf in leaves]
    sizes = [results["n-samples"][leaf]["effective"] for leaf in leaves]
    assert summary["stderr"] == pytest.approx(pooled_sample_stderr(stderrs, sizes), rel=1e-9)
