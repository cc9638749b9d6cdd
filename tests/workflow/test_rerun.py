"""Workflow-level promises on a copy of the finished miniature: a finished run plans nothing; a
changed setting or prompt plans exactly the jobs it affects (Snakemake's rerun triggers: params,
input files); and deterministic rules, the cheap ones and one job of each expensive one, rerun in
another folder give the same bytes."""

import shutil
from pathlib import Path

import pytest
from conftest import copy_repo, in_thread, snakemake

PROFILE = ("--profile", "profiles/miniature")


@pytest.fixture(scope="module")
def finished(miniature, tmp_path_factory):
    """A scratch copy of the repository holding the finished miniature and Snakemake's record of
    it (.snakemake/metadata: the params and inputs each output was made with); work/ left out."""
    work = copy_repo(tmp_path_factory.mktemp("rerun"))
    shutil.copytree(miniature, work / "miniature", ignore=shutil.ignore_patterns("work"), symlinks=True)
    shutil.copytree(miniature.parent / ".snakemake" / "metadata", work / ".snakemake" / "metadata")
    # a finished run plans nothing: every change below is then the only reason for what it plans
    assert planned(work) == {}
    return work


def planned(work: Path, *args) -> dict[str, int]:
    """Rule -> planned job count of a dry run (the "Job stats" table; empty when nothing to do)."""
    proc = snakemake(work, *PROFILE, "-n", *args)
    if "Job stats:" not in proc.stdout:
        assert "Nothing to be done" in proc.stdout, proc.stdout[-3000:]
        return {}
    jobs = {}
    for line in proc.stdout.split("Job stats:")[1].splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


def edited(path: Path, old: str, new: str):
    """Replace `old` (once) in a file for the duration of a with-block; the file's bytes and mtime
    are restored afterwards."""
    import contextlib
    import os

    @contextlib.contextmanager
    def change():
        text, stat = path.read_text(), path.stat()
        assert text.count(old) == 1, f"{path}: {old!r}"
        path.write_text(text.replace(old, new))
        try:
            yield
        finally:
            path.write_text(text)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    return change()


JUDGES_DOWNSTREAM = {  # everything that reads the judge estimate or verdicts
    "judge_cost_estimate": 1,
    "judge_pairwise": 1,
    "pairwise_winrate": 1,
    "figure2": 1,
    "judge_failure_modes": 1,
    "failure_mode_counts": 1,
    "figure3": 1,
    "table10": 1,  # Table 10: the failure-mode definitions the judge was given
    "reproduction_report": 1,  # its claims read the verdicts
    "all": 1,
}
# Figure 1 is the rule graph of the run's whole config: any config change redraws it (seconds, local)
RULE_GRAPH = {"rulegraph": 1, "figure1": 1}


@pytest.mark.parametrize(
    "file,old,new,expected",
    [
        # a setting of the noise rule only (paper.flag_sigma): the effects and the report that reads them
        (
            "config/miniature.yaml",
            "flag_sigma: 2 ",
            "flag_sigma: 3 ",
            {"model_effects": 1, "reproduction_report": 1, "all": 1} | RULE_GRAPH,
        ),
        # a judge prompt: its stage, the estimate that counts its tokens, and what they feed
        ("prompts/failure_modes.user.jinja", "{{ query }}", "{{ query }}\n", JUDGES_DOWNSTREAM),
        # a classifier hyperparameter: the classifier and everything made from its scores
        ("config/miniature.yaml", "weight_decay: 0.01\n", "weight_decay: 0.02\n", None),
    ],
    ids=["report-setting", "judge-prompt", "classifier-hyperparameter"],
)
def test_a_changed_setting_or_prompt_plans_exactly_the_affected_jobs(finished, file, old, new, expected):
    with edited(finished / file, old, new):
        jobs = planned(finished)
    if expected is not None:
        assert jobs == expected
        return
    # the classifier: its training and evaluation, every shard's scores and FineMed part, and
    # everything downstream; nothing upstream of it (labels, fixture shards, tiny models)
    assert jobs["train_classifier"] == 1 and jobs["evaluate_classifier"] == 1
    assert jobs["score_shard"] == len(list((finished / "miniature" / "results" / "scores").glob("*.parquet")))
    assert {"figure4", "train_cpt", "merge_slerp", "benchmark_medical", "all"} <= set(jobs)
    assert not {
        "label_documents",
        "sample_documents",
        "make_fixture_shard",
        "build_tiny_model",
        "split_labelled_documents",
    } & set(jobs)


# cheap rules with deterministic outputs, from the fixture shards to the tables and figures
DETERMINISTIC_RULES = [
    "make_fixture_shard",
    "sample_documents",
    "split_labelled_documents",
    "simulate_annotations",
    "evaluate_labels",
    "evaluate_classifier",
    "filter_shard",
    "corpus_statistics",
    "judge_cost_estimate",
    "pairwise_winrate",
    "failure_mode_counts",
    "table2",
    "table5",
    "benchmark_table",
    "figure2",
    "figure3",
    "figure4",
]


def test_cheap_rules_rerun_in_another_folder_give_the_same_bytes(miniature, tmp_path):
    """README, "Determinism": the rules above rerun (forced, nothing else allowed to run) in a copy
    at another path; every file under data/, results/ and paper/ tables and figures is then
    byte-identical to the original run's, timing files excepted by name (definemed.determinism)."""
    import time

    from definemed.determinism import SCOPE, compare_trees, render

    work = copy_repo(tmp_path / "elsewhere")
    shutil.copytree(miniature, work / "miniature", ignore=shutil.ignore_patterns("work"), symlinks=True)
    shutil.copytree(miniature.parent / ".snakemake" / "metadata", work / ".snakemake" / "metadata")
    start = time.time()
    rules = DETERMINISTIC_RULES
    snakemake(work, *PROFILE, "--forcerun", *rules, "--allowed-rules", *rules, "--", "all", timeout=1800)
    rerun = [p for p in (work / "miniature").rglob("*") if p.is_file() and p.stat().st_mtime >= start]
    made = {p.relative_to(work / "miniature").as_posix() for p in rerun}
    # the forced jobs did run: their outputs are new files
    for rel in ("data/fineweb2", "results/labels/split_stats.json", "results/classifier/metrics.json",
                "results/finemed/statistics.json", "paper/figures/figure4.png", "paper/tables/table5.md"):  # fmt: skip
        assert any(m == rel or m.startswith(rel + "/") for m in made), rel
    result = compare_trees(miniature, work / "miniature", scope=[*SCOPE, "data"])
    assert result.ok, render(result, miniature, work / "miniature")
    assert len(result.identical) > 50


# the expensive stages, one job each (the cheapest of its rule in the miniature), by target: what a
# forced rerun of that job writes must be byte-identical to the finished run's. The CPT and its merge
# are tests/workflow/test_chaos.py's: it reruns a CPT job (killed, then resumed) and its merge in another
# folder and compares their outputs, weights and cards byte for byte (the CPT here would add ~110 s)
EXPENSIVE_JOBS = {
    "label_documents": "results/labels/llm_labels.parquet",  # labelling: ~20 s
    "train_classifier": "results/classifier/training_log.jsonl",  # classifier: ~26 s
    "score_shard": "results/scores/train-000_00002.parquet",  # scoring, after the classifier: ~7 s
    "generate_responses": "results/generations/tiny-mistral-7b-instruct.jsonl",  # generation: ~5 s
    "benchmark_medical": "results/benchmarks/tiny-mistral-7b-instruct/medical.lm_eval.json",  # lm-eval: ~16 s
}


def expensive_stages_rerun(miniature, tmp_path):
    """Determinism beyond the cheap rules: one job of each expensive rule (labelling, classifier,
    scoring, generation, lm-eval; EXPENSIVE_JOBS; CPT and merge: tests/workflow/test_chaos.py) rerun, forced
    and alone, in a copy of the finished miniature at another path (work/ left out: no labelling
    chunk to resume from) gives the same bytes: every file under data/, results/ and paper/ tables
    and figures (timings excepted by name, definemed.determinism) and the classifier. CI cost:
    about 75 s on 2 cores (the five jobs in sequence). A miniature built inside a
    git checkout (DEFINEMED_TEST_MINIATURE=miniature) differs from this copy in lm-eval's `git_hash`
    of <group>.lm_eval.json (the commit vs null: provenance, kept on purpose, docs/benchmarks.md);
    CI's miniature is a copy, as this one. Run in a thread from the moment the miniature exists
    (conftest.in_thread), beside the other slow tests; the test below joins it."""
    import time

    from definemed.determinism import SCOPE, compare_trees, render

    work = copy_repo(tmp_path / "elsewhere")
    shutil.copytree(miniature, work / "miniature", ignore=shutil.ignore_patterns("work"), symlinks=True)
    shutil.copytree(miniature.parent / ".snakemake" / "metadata", work / ".snakemake" / "metadata")
    start = time.time()
    rules = list(EXPENSIVE_JOBS)
    targets = [f"miniature/{t}" for t in EXPENSIVE_JOBS.values()]
    snakemake(work, *PROFILE, "--forcerun", *rules, "--allowed-rules", *rules, "--", *targets, timeout=1800)
    for rule, target in EXPENSIVE_JOBS.items():  # each forced job did run: its output is new
        assert (work / "miniature" / target).stat().st_mtime >= start, rule
    result = compare_trees(miniature, work / "miniature", scope=[*SCOPE, "data"])
    assert result.ok, render(result, miniature, work / "miniature")


@pytest.mark.start_with_miniature(start=in_thread(expensive_stages_rerun))
def test_expensive_stages_rerun_in_another_folder_give_the_same_bytes(started):
    started.join(timeout=1800)
