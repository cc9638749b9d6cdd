"""The config schema and the paper run's DAG."""

import pytest
import yaml
from conftest import REPO, copy_repo, snakemake

from definemed.dataset.fineweb import read_manifest


def test_paper_dag_has_one_download_per_manifest_shard(paper_dry_run):
    proc = paper_dry_run
    shards = read_manifest(REPO / "data" / "fineweb2-deu_Latn.manifest.tsv")
    counts = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert counts["download_fineweb_shard"] == len(shards)
    assert counts["score_shard"] == counts["filter_shard"] == len(shards)
    assert counts["fetch_model"] == 7
    for rule in ("pack_corpus", "train_cpt", "heldout_perplexity", "merge_slerp"):
        assert counts[rule] == 4, rule
    for rule in (
        "sample_documents",
        "label_documents",
        "split_labelled_documents",
        "export_annotation_sample",
        "train_classifier",
        "evaluate_classifier",
        "corpus_statistics",
        "make_ablation_corpus",
    ):
        assert counts[rule] == 1


def break_config(tmp_path, change):
    """Dry-run the paper config after `change(cfg)`; returns (exit code, all output)."""
    work = copy_repo(tmp_path)
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    change(cfg)
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    proc = snakemake(work, "-n", check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: c["labelling"].update(chunk_size="many"), ["chunk_size", "'many' is not of type 'integer'"]),
        (lambda c: c["labelling"].update(prompt="Is this medical?"), ["prompt", "<DOCUMENT>"]),
        # a typo must not silently fall back to nothing
        (lambda c: c.update(labeling=c.pop("labelling")), ["labeling"]),
    ],
    ids=["wrong-type", "prompt-without-placeholder", "unknown-key"],
)
def test_bad_config_stops_with_the_key_named(tmp_path, change, expected):
    code, out = break_config(tmp_path, change)
    assert code != 0
    for text in expected:
        assert text in out


def test_miniature_outputs_live_under_their_own_root():
    from definemed.config import load

    assert load(REPO / "config" / "miniature.yaml")["root"] == "miniature/"
    assert load(REPO / "config.yaml")["root"] == ""
    proc = snakemake(REPO, "--profile", "profiles/miniature", "-n", "-F", "--quiet", "all")
    outputs = [line.split("output: ")[1] for line in proc.stdout.splitlines() if "output: " in line]
    files = [f.strip() for line in outputs for f in line.split(",")]
    assert files and all(f.startswith("miniature/") for f in files)


def test_paper_config_values_come_with_their_section():
    text = (REPO / "config.yaml").read_text()
    prompt = yaml.safe_load(text)["labelling"]["prompt"]
    # appendix A.1, verbatim
    assert prompt.startswith("You are a medical expert tasked with identifying whether the provided")
    assert prompt.endswith("Content: <DOCUMENT>")
    assert "Restrict your response to ’yes’ or ’no’." in prompt
    assert text.count("LOST") >= 3  # values the paper's text lost are marked as such


def test_cpt_jobs_request_multi_node_resources():
    proc = snakemake(REPO, "-n", "-p", "--forcerun", "train_cpt")
    jobs = proc.stdout.split("rule train_cpt:")[1:]
    assert len(jobs) == 4
    nodes = {}
    for job in jobs:
        run = job.split("wildcards: run=")[1].split()[0]
        resources = job.split("resources: ")[1].splitlines()[0]
        nodes[run] = int(resources.split("nodes=")[1].split(",")[0])
        assert "gpu=" in resources and "accelerate launch --config_file accelerate/fsdp_" in job
    assert nodes["definemed-qwen2.5-7b"] == 8  # Table 8: 64 GPUs on Karolina
    assert nodes["definemed-mistral-small-24b"] == 32  # Table 8: 128 GPUs on Leonardo


def job_priorities(dry_run: str) -> dict[str, set[int]]:
    """{rule: priorities of its jobs} from a dry run's job blocks (no `priority:` line means 0)."""
    out: dict[str, set[int]] = {}
    for block in dry_run.split("\nrule ")[1:]:
        rule = block.split(":")[0]
        line = [x for x in block.splitlines() if x.strip().startswith("priority: ")]
        out.setdefault(rule, set()).add(int(line[0].split(": ")[1]) if line else 0)
    return out


@pytest.mark.parametrize("profile", [(), ("--profile", "profiles/miniature")], ids=["paper", "miniature"])
def test_every_job_on_the_way_to_the_merged_models_goes_first(profile):
    # The long chain (data, labels, classifier, FineMed, CPT, merges) must not wait behind
    # evaluations: every job a merged model needs carries the upstream priority, evaluations do not.
    from definemed.config import load

    config = load(REPO / ("config/miniature.yaml" if profile else "config.yaml"))
    merged = [f"{config['root']}models/{run}-slerp" for run in config["cpt"]["runs"]]
    upstream = job_priorities(snakemake(REPO, *profile, "-n", "-F", *merged).stdout)
    assert {"train_cpt", "merge_slerp", "train_classifier"} <= set(upstream)
    first = upstream["train_cpt"]
    assert first != {0} and {rule: p for rule, p in upstream.items() if p != first} == {}
    everything = job_priorities(snakemake(REPO, *profile, "-n", "-F", "all").stdout)
    assert everything["benchmark_medical"] == everything["judge_pairwise"] == {0}
