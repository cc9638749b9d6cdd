"""What a benchmark job reads besides the model (issue 26, 5 and 6): the Hub datasets at exactly
the lock's revision (offline, datasets would take the newest cached copy of any revision), and chat
templates that print the date rendered on the configured day wherever lm-eval renders them."""

import dataclasses
import datetime
import json
import subprocess
import sys

import pytest
from conftest import REPO

from definemed.chat import load_tokenizer
from definemed.config import subschema
from definemed.evaluation import benchmarks
from definemed.evaluation.benchmarks import cached_dataset_copies, check_locked_revisions

LOCKED = "a" * 40
OTHER = "b" * 40
DATE = "2025-01-30"


def cache_copy(cache, repo, config, revision):
    ns, name = repo.split("/")
    path = cache / f"{ns}___{name.lower()}" / config / "0.0.0" / revision
    path.mkdir(parents=True)
    (path / "dataset_info.json").write_text(json.dumps({"config_name": config}))
    return path


def test_a_cached_copy_at_another_revision_is_refused_with_both_revisions(tmp_path):
    record = {"repo": "openai/MMMLU", "revision": LOCKED, "configs": [{"name": "DE_DE"}]}
    cache_copy(tmp_path, "openai/MMMLU", "DE_DE", LOCKED)
    assert set(cached_dataset_copies("openai/MMMLU", tmp_path)) == {LOCKED}
    check_locked_revisions([record], tmp_path)  # the lock's copy alone: read
    cache_copy(tmp_path, "openai/MMMLU", "DE_DE", OTHER)
    with pytest.raises(ValueError, match=rf"openai/MMMLU: .* holds revision\(s\) {OTHER} beside the lock's {LOCKED}"):
        check_locked_revisions([record], tmp_path)


def test_a_dataset_not_cached_at_the_lock_revision_is_refused(tmp_path):
    cache_copy(tmp_path, "allenai/ai2_arc", "ARC-Easy", LOCKED)
    record = {"repo": "allenai/ai2_arc", "revision": OTHER, "configs": [{"name": "ARC-Easy"}]}
    with pytest.raises(
        ValueError, match=f"allenai/ai2_arc: .* holds revision\\(s\\) {LOCKED} beside the lock's {OTHER}"
    ):
        check_locked_revisions([record], tmp_path)
    with pytest.raises(ValueError, match=f"no copy at the lock's revision {OTHER}"):
        check_locked_revisions([record], tmp_path / "empty")


def test_the_benchmark_job_checks_the_records_before_loading_the_model(tmp_path):
    cache_copy(tmp_path / "cache", "openai/MMMLU", "DE_DE", OTHER)
    record = tmp_path / "openai--MMMLU.json"
    record.write_text(json.dumps({"repo": "openai/MMMLU", "revision": LOCKED, "configs": []}))
    proc = subprocess.run(
        [sys.executable, "scripts/run_benchmarks.py", "--model", "m", "--model-dir", str(tmp_path / "no-model"),
         "--tasks", "{}", "--settings", '{"backend": "hf", "seed": 0}', "--lm-eval-data", str(record),
         "--work-dir", str(tmp_path / "w"),
         "--out-dir", str(tmp_path / "o"), "--out-full", str(tmp_path / "o.json")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={"PATH": "", "HF_DATASETS_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert proc.returncode != 0 and f"beside the lock's {LOCKED}" in proc.stderr, proc.stderr[-2000:]
    rule = (REPO / "rules" / "benchmarks.smk").read_text()
    assert "--lm-eval-data {input.lm_eval_data}" in rule


def test_lm_eval_renders_date_printing_templates_on_the_configured_day(tiny_model, monkeypatch, tmp_path):
    folder = tiny_model("tiny-mistral-small-24b-instruct")
    assert "strftime_now" in load_tokenizer(folder).chat_template  # the template prints the date
    seen = {}

    def fake_simple_evaluate(**kwargs):  # where lm-eval renders: the tokenizer's apply_chat_template
        tok = load_tokenizer(folder)
        seen["prompt"] = tok.apply_chat_template([{"role": "user", "content": "Frage"}], tokenize=False)
        return {}

    import lm_eval

    monkeypatch.setattr(lm_eval, "simple_evaluate", fake_simple_evaluate)
    settings = benchmarks.BenchmarkSettings.from_config(
        {"backend": "hf", "dtype": "float32", "batch_size": 1, "apply_chat_template": True, "seed": 0}
    )
    assert settings.chat_template_date == subschema("chat_template_date")["default"]  # a date whatever the caller gave
    benchmarks.evaluate(folder, {}, dataclasses.replace(settings, chat_template_date=DATE), tmp_path / "w")
    assert f"The current date is {DATE}." in seen["prompt"]
    today = f"The current date is {datetime.date.today():%Y-%m-%d}."
    benchmarks.evaluate(folder, {}, dataclasses.replace(settings, apply_chat_template=False), tmp_path / "w")
    assert today in seen["prompt"]  # no chat template applied: the clock is left alone


def test_the_benchmark_settings_carry_the_date_when_lm_eval_applies_templates():
    helper = (REPO / "rules" / "helpers" / "benchmarks.smk").read_text()
    assert 'bench["chat_template_date"] = config["chat_template_date"]' in helper
    assert "chat_template_date" in {f.name for f in dataclasses.fields(benchmarks.BenchmarkSettings)}


def test_the_benchmarks_env_carries_every_backend_it_names():
    """envs/benchmarks.yaml runs each lm-eval backend the config may name (schema: vllm, hf): the
    lm_eval line asks for the backend's extra and the lock pins what that extra requires (lm-eval
    0.4.13's hf extra: transformers, torch, accelerate, peft; lm_eval/models/huggingface.py imports
    accelerate and peft at its top)."""
    import re
    from importlib.metadata import metadata

    import yaml

    from definemed.envs import canonical, read_env

    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    backends = schema["properties"]["benchmarks"]["properties"]["backend"]["enum"]
    source = read_env(REPO / "envs" / "source" / "benchmarks.yaml").requirements()
    extras = set(re.search(r"\[(.*)\]", source["lm-eval"]).group(1).split(","))
    locked = read_env(REPO / "envs" / "benchmarks.yaml").requirements()
    requires = metadata("lm_eval").get_all("Requires-Dist")
    for backend in backends:
        assert backend in extras, f"envs/source/benchmarks.yaml: lm_eval without its {backend!r} extra"
        needed = {canonical(re.match(r"[A-Za-z0-9._-]+", r).group(0)) for r in requires if f'extra == "{backend}"' in r}
        assert needed and needed <= set(locked), f"envs/benchmarks.yaml lacks {sorted(needed - set(locked))}"
    assert {"accelerate", "peft"} <= set(locked)


def test_data_parallel_is_refused_before_any_job_starts():
    from definemed.evaluation.benchmarks import check_backend_settings

    check_backend_settings({"backend": "vllm", "model_args": {"gpu_memory_utilization": 0.9}})
    with pytest.raises(ValueError, match="data_parallel_size: 2 is not supported: .* needs ray"):
        check_backend_settings({"backend": "vllm", "model_args": {"data_parallel_size": 2}})
    with pytest.raises(ValueError, match="tensor_parallel_size: set per model by benchmarks.tensor_parallel"):
        check_backend_settings({"backend": "vllm", "model_args": {"tensor_parallel_size": 2}})
    # at the workflow's parse time, and in the job itself
    helper = (REPO / "rules" / "helpers" / "benchmarks.smk").read_text()
    assert 'check_backend_settings(config["benchmarks"])' in helper
    with pytest.raises(ValueError, match="data_parallel_size"):
        benchmarks.evaluate(
            "m",
            {},
            benchmarks.BenchmarkSettings.from_config(
                {"backend": "vllm", "model_args": {"data_parallel_size": 4}, "seed": 0}
            ),
            "w",
        )
