"""Continual pre-training (kill and resume, held-out perplexity) and SLERP merges (A.4 schedule)."""

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO, cpt_job_settings
from safetensors.torch import load_file

from definemed.config import load
from definemed.io import read_jsonl
from definemed.training.merge import MergeSettings, check_compatible, layer_t, run_slerp

# the A.4 schedule as config.yaml gives it to the merge rule
A4 = load(REPO / "config.yaml")["merge"]["t"]


def schedule_of(tensor: str):
    """The t of a tensor by mergekit's rule: the first entry whose filter is a substring of the
    tensor's name, else the entry without a filter."""
    return next(e["value"] for e in A4 if e.get("filter", "") in tensor)


def tiny_pair(tiny_model, tmp_path, layers=9, vocab_from="tiny-mistral-7b-instruct"):
    from transformers import AutoConfig, AutoModelForCausalLM

    src = tiny_model(vocab_from)
    config = AutoConfig.from_pretrained(src)
    config.num_hidden_layers = layers
    paths = []
    for seed, name in ((0, "base"), (1, "cpt")):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
        model.save_pretrained(tmp_path / name)
        for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
            if (src / f).exists():
                shutil.copy(src / f, tmp_path / name / f)
        paths.append(tmp_path / name)
    return paths


def test_layer_t_spreads_anchors_over_the_depth():
    schedule = [0, 0.5, 0.3, 0.7, 1]
    assert [layer_t(schedule, i, 5) for i in range(5)] == schedule
    assert layer_t(schedule, 1, 9) == pytest.approx(0.25)  # halfway between the first two anchors
    assert layer_t(0.5, 3, 9) == 0.5


def test_merged_tensors_follow_the_a4_schedule(tiny_model, tmp_path):
    from mergekit.merge_methods.slerp import slerp

    base, cpt = tiny_pair(tiny_model, tmp_path)
    run_slerp(base, cpt, tmp_path / "merged", MergeSettings.from_config({"t": A4, "dtype": "float32"}))
    a, b = load_file(base / "model.safetensors"), load_file(cpt / "model.safetensors")
    m = load_file(tmp_path / "merged" / "model.safetensors")
    for i in range(9):
        for name in (
            f"model.layers.{i}.self_attn.q_proj.weight",
            f"model.layers.{i}.self_attn.o_proj.weight",
            f"model.layers.{i}.mlp.down_proj.weight",
            f"model.layers.{i}.input_layernorm.weight",
        ):
            t = layer_t(schedule_of(name), i, 9)
            # mergekit interpolates each tensor as one vector (classic SLERP)
            expected = slerp(torch.tensor(t), a[name].reshape(1, -1), b[name].reshape(1, -1)).reshape(a[name].shape)
            torch.testing.assert_close(m[name], expected, rtol=1e-5, atol=1e-6, msg=f"{name} at t={t}")
    # the paper's endpoints: attention from the base at the bottom and the CPT model at the top, MLPs
    # the other way round (a tensor at t=0 is the base's, at t=1 the CPT model's)
    ends = {"self_attn": (a, b), "mlp": (b, a)}
    for part, tensor in (("self_attn", "self_attn.q_proj.weight"), ("mlp", "mlp.up_proj.weight")):
        bottom, top = ends[part]
        torch.testing.assert_close(m[f"model.layers.0.{tensor}"], bottom[f"model.layers.0.{tensor}"])
        torch.testing.assert_close(m[f"model.layers.8.{tensor}"], top[f"model.layers.8.{tensor}"])


@pytest.mark.parametrize("damaged", ["cpt", "base"])
def test_a_truncated_safetensors_file_is_named_with_its_model_folder(tiny_model, tmp_path, damaged):
    """A model folder whose weights were cut short (a kill while copying, a full disk): the merge
    stops naming the folder and the file, with the advice to delete the folder and rerun."""
    base, cpt = tiny_pair(tiny_model, tmp_path, layers=2)
    (cpt / "definemed-source.json").write_text(json.dumps({"name": "cpt", "cpt": {"steps": 1}}))
    folder = {"base": base, "cpt": cpt}[damaged]
    weights = folder / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    with pytest.raises(ValueError) as e:
        run_slerp(base, cpt, tmp_path / "merged", MergeSettings.from_config({"t": A4, "dtype": "float32"}))
    message = str(e.value)
    assert f"damaged model folder {folder}: model.safetensors does not open" in message, message
    assert f"Delete the folder {folder} and rerun" in message, message
    if damaged == "cpt":
        assert "train_cpt" in message, message


def test_merged_model_card_names_the_model_its_base_and_the_merged_models_in_a_stable_order(tiny_model, tmp_path):
    """The card a user would push to the Hub: titled with the model's name (not the staging folder
    the merge writes to), its base as base_model (the Hub id where the base came from the Hub), the
    merged models base first; two merges give the same bytes."""
    import yaml

    base, cpt = tiny_pair(tiny_model, tmp_path, layers=2)
    (base / "definemed-source.json").write_text(json.dumps({"name": "base", "hub": {"repo": "org/base-instruct"}}))
    cards = []
    for k in range(2):
        out = tmp_path / f"run{k}" / "mymodel-slerp.partial"
        run_slerp(base, cpt, out, MergeSettings.from_config({"t": A4, "dtype": "float32"}), name="mymodel-slerp")
        cards.append((out / "README.md").read_text())
    assert cards[0] == cards[1]
    card = cards[0]
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["base_model"] == ["org/base-instruct", "cpt"] and meta["base_model_relation"] == "merge"
    assert "# mymodel-slerp\n" in card and ".partial" not in card
    assert card.index(f"`{base}`") < card.index(f"`{cpt}`")


def test_mismatched_models_are_refused(tiny_model, tmp_path):
    base, _ = tiny_pair(tiny_model, tmp_path / "a")
    other, _ = tiny_pair(tiny_model, tmp_path / "b", layers=4)
    with pytest.raises(ValueError, match="num_hidden_layers differs"):
        check_compatible(base, other)
    with pytest.raises(ValueError, match="architectures differs"):
        check_compatible(tiny_model("tiny-mistral-7b-instruct"), tiny_model("tiny-qwen2.5-7b-instruct"))


def test_miniature_merges_exist_in_float16_and_cpt_lowers_medical_perplexity(miniature, miniature_config):
    for run in miniature_config["cpt"]["runs"]:
        check = json.loads((miniature / "results" / "merges" / f"{run}-slerp" / "check.json").read_text())
        assert check["dtype"] == "F16" and check["generated_tokens"] > 0
        merged = load_file(next((miniature / "models" / f"{run}-slerp").glob("*.safetensors")))
        assert {t.dtype for t in merged.values()} == {torch.float16}
        ppl = json.loads((miniature / "results" / "cpt" / run / "perplexity.json").read_text())
        assert ppl["cpt"]["perplexity"] < ppl["base"]["perplexity"], run
        summary = json.loads((miniature / "results" / "cpt" / run / "summary.json").read_text())
        assert summary["steps"] == summary["planned_steps"] > 0
        log = read_jsonl(miniature / "results" / "cpt" / run / "training_log.jsonl")
        assert [r["step"] for r in log] == list(range(1, summary["steps"] + 1))
        assert all(r["tokens_per_s_per_device"] > 0 for r in log)


def run_cpt(miniature, config, packed, work, out):
    settings = cpt_job_settings(
        config, epochs=2, effective_batch_sequences=4, micro_batch_size=2, save_steps=3, warmup_steps=2
    )
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "train_cpt.py"),
        "--run",
        "t",
        "--packed",
        str(packed),
        "--base",
        str(miniature / "models" / "tiny-qwen2.5-7b-instruct"),
        "--settings",
        json.dumps(settings),
        "--seed",
        "3",
        "--work-dir",
        str(work),
        "--out",
        str(out / "model"),
        "--out-log",
        str(out / "log.jsonl"),
        "--out-summary",
        str(out / "summary.json"),
        "--threads",
        "1",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_killed_cpt_resumes_to_bitwise_equal_weights(miniature, miniature_config, tmp_path):
    from transformers import AutoTokenizer

    from definemed.training.packing import pack_corpus

    tok = AutoTokenizer.from_pretrained(miniature / "models" / "tiny-qwen2.5-7b-instruct")
    part = sorted((miniature / "results" / "finemed").glob("train-*.parquet"))[0]
    import pyarrow.parquet as pq

    small = tmp_path / "part.parquet"
    pq.write_table(pq.read_table(part).slice(0, 60), small)
    pack_corpus([small], tok, 256, tmp_path / "packed")
    (tmp_path / "ref").mkdir()
    (tmp_path / "run").mkdir()

    ref = run_cpt(miniature, miniature_config, tmp_path / "packed", tmp_path / "ref-work", tmp_path / "ref")
    assert ref.wait(timeout=600) == 0, ref.stdout.read()[-3000:]

    work = tmp_path / "work"
    proc = run_cpt(miniature, miniature_config, tmp_path / "packed", work, tmp_path / "run")
    deadline = time.time() + 600
    while not (work / "checkpoint-6" / "trainer_state.json").exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "run" / "model").exists()

    resumed = run_cpt(miniature, miniature_config, tmp_path / "packed", work, tmp_path / "run")
    out = resumed.stdout.read()
    assert resumed.wait(timeout=600) == 0, out[-3000:]
    assert "resuming from" in out
    a = load_file(tmp_path / "ref" / "model" / "model.safetensors")
    b = load_file(tmp_path / "run" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from an uninterrupted run"
