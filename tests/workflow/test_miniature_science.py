"""The miniature carries the paper's effects for real, and a sabotaged pipeline loses them.

On the finished miniature: CPT on FineMed-de raises the medical average over its base for every
family, the SLERP merge keeps part of that gain, CPT on the random FineWeb2 sample gains less, CPT
lowers the medical held-out perplexity more than the general one, and where CPT lowers the general
average the merge recovers part of it; each beyond two standard errors of the paired difference
(definemed/evaluation/effects.py). Then the sabotage: the base's weights copied over a CPT model and the
downstream jobs rerun through Snakemake; the CPT and merge effects of that run no longer hold.
"""

import json
import os
import shutil

import pytest
from conftest import REPO, copy_repo, in_thread, snakemake

from definemed.evaluation.effects import HOLDS, constant_answer, model_difference, paired_difference

PROFILE = ("--profile", "profiles/miniature")


def _groups(config):
    tasks = config["benchmarks"]["tasks"]
    return {g: {k: t for k, t in tasks.items() if t["group"] == g} for g in ("medical", "general")}


def _families(config):
    runs = config["cpt"]["runs"]
    return {r: s for r, s in runs.items() if s["corpus"] == "finemed"}


def _effect(results, config, before, after, group):
    return model_difference(results, before, after, _groups(config)[group])


def test_miniature_cpt_and_merge_carry_the_papers_pattern(miniature, miniature_config):
    results = miniature / "results"
    for run, spec in _families(miniature_config).items():
        base, merge = spec["base"], f"{run}-slerp"
        cpt_gain = _effect(results, miniature_config, base, run, "medical")
        merge_gain = _effect(results, miniature_config, base, merge, "medical")
        assert cpt_gain.verdict() == HOLDS, (run, cpt_gain)
        assert merge_gain.verdict() == HOLDS, (run, merge_gain)
        # a merge keeps a part of the gain: not more than CPT reached (beyond noise)
        assert _effect(results, miniature_config, run, merge, "medical").mean < 2 * cpt_gain.stderr, run
        general = _effect(results, miniature_config, base, run, "general")
        if general.verdict() != HOLDS:  # CPT lowered (or kept) general ability: the merge recovers part
            recovery = _effect(results, miniature_config, run, merge, "general")
            assert recovery.verdict() == HOLDS, (run, general, recovery)


def test_miniature_finemed_cpt_beats_random_cpt(miniature, miniature_config):
    results = miniature / "results"
    runs = miniature_config["cpt"]["runs"]
    ablations = {r: s for r, s in runs.items() if s["corpus"] != "finemed"}
    assert ablations
    for run, spec in ablations.items():
        twin = next(r for r, s in _families(miniature_config).items() if s["base"] == spec["base"])
        diff = _effect(results, miniature_config, run, twin, "medical")
        assert diff.verdict() == HOLDS, (twin, run, diff)


def test_miniature_cpt_lowers_medical_perplexity_more_than_general(miniature, miniature_config):
    effects = json.loads((miniature / "results" / "effects.json").read_text())
    for run in miniature_config["cpt"]["runs"]:
        shift = effects["perplexity"][run]
        assert shift["medical_nll_change"]["difference"] < 0, run
        assert shift["medical_lowered_more"]["verdict"] == HOLDS, (run, shift)


def test_miniature_effects_file_is_what_the_samples_give(miniature, miniature_config):
    effects = json.loads((miniature / "results" / "effects.json").read_text())
    assert effects["comparisons"]
    for row in effects["comparisons"]:
        diff = _effect(miniature / "results", miniature_config, row["before"], row["after"], row["group"])
        assert (row["difference"], row["stderr"], row["n"]) == pytest.approx((diff.mean, diff.stderr, diff.n))
        assert row["verdict"] == diff.verdict(effects["sigma"])
    report = (miniature / "paper" / "reproduction.md").read_text()
    assert "## Effects with their noise" in report and "The miniature's pattern" in report


def test_miniature_rows_answer_more_than_one_option(miniature, miniature_config):
    """No base, CPT or merge row answers one constant option on a medical column (a row that did
    would measure the gold-letter distribution, as the old miniature's rows did)."""
    results = miniature / "results"
    models = [m for run, spec in _families(miniature_config).items() for m in (spec["base"], run, f"{run}-slerp")]
    baselines = miniature_config["benchmarks"]["baselines"]["medical"]
    assert baselines  # the tiny BioMistral pair fills Table 4's baseline rows, as in the paper
    for model in baselines + models:
        for key in _groups(miniature_config)["medical"]:
            assert constant_answer(results, model, key) is None, (model, key)


def test_paired_difference_rule():
    """The verdict rule on constructed items: a consistent gain holds, noise does not, a loss is
    contradicted; a one-sided count against the paired error."""
    gain = paired_difference([0, 0, 1, 0, 0, 1, 0, 0] * 5, [1, 0, 1, 1, 0, 1, 1, 0] * 5)
    assert gain.verdict() == HOLDS and gain.n == 40
    noise = paired_difference([0, 1] * 20, [1, 0] * 19 + [1, 1])
    assert noise.verdict() == "within noise"
    assert paired_difference([1] * 10 + [0] * 30, [0] * 40).verdict() == "contradicted"
    with pytest.raises(ValueError, match="differ in number"):
        paired_difference([0, 1], [0, 1, 1])


def sabotaged(miniature, tmp_path):
    """A scratch copy of the finished miniature whose FineMed-de Qwen CPT model holds its base's
    weights, with the downstream jobs rerun by Snakemake up to results/effects.json. Run in a thread
    from the moment the miniature exists (conftest.in_thread), beside the other slow tests."""
    from definemed.config import load

    miniature_config = load(REPO / "config" / "miniature.yaml")
    run = miniature_config["paper"]["claims"]["focus_run"]
    base = miniature_config["cpt"]["runs"][run]["base"]
    work = copy_repo(tmp_path / "sabotage")
    shutil.copytree(miniature, work / "miniature", ignore=shutil.ignore_patterns("work"), symlinks=True)
    shutil.copytree(miniature.parent / ".snakemake" / "metadata", work / ".snakemake" / "metadata")
    models = work / "miniature" / "models"
    weights = sorted(p.name for p in (models / base).glob("*.safetensors"))
    assert weights == sorted(p.name for p in (models / run).glob("*.safetensors"))
    for name in weights:
        shutil.copy(models / base / name, models / run / name)
    # Snakemake dates a directory output by the .snakemake_timestamp it writes inside, which
    # overwriting the weights leaves alone: date it now, as a CPT job that wrote them would
    os.utime(models / run / ".snakemake_timestamp")
    proc = snakemake(work, *PROFILE, "miniature/results/effects.json")
    assert "merge_slerp" in proc.stdout + proc.stderr
    return work / "miniature", run, base


@pytest.mark.start_with_miniature(start=in_thread(sabotaged))
def test_sabotage_copying_the_base_over_a_cpt_model_breaks_its_effects(started, miniature_config):
    """Reran through Snakemake (merge, benchmarks, perplexity, effects): the CPT and merge effects of
    the sabotaged run no longer hold, and FineMed-de CPT no longer beats random CPT."""
    root, run, base = started.join(timeout=1800)
    effects = json.loads((root / "results" / "effects.json").read_text())
    verdicts = {(r["run"], r["name"], r["group"]): r["verdict"] for r in effects["comparisons"]}
    assert verdicts[(run, "CPT vs base", "medical")] != HOLDS
    assert verdicts[(run, "merge vs base", "medical")] != HOLDS
    assert verdicts[(run, "FineMed-de CPT vs random CPT", "medical")] != HOLDS
    assert effects["perplexity"][run]["medical_lowered_more"]["verdict"] != HOLDS
    # the untouched families keep theirs: the test compares, it does not fail everything
    for other in _families(miniature_config):
        if other != run:
            assert verdicts[(other, "CPT vs base", "medical")] == HOLDS, other
