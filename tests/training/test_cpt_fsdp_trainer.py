"""scripts/train_cpt.py with the Trainer under FSDP1, on CPU over gloo, launched by `accelerate launch`
with the repository's own accelerate configs (tests/support/harnesses/fsdp_trainer_run.py says what it
switches to run FSDP on CPU): FULL_SHARD on 2 ranks (accelerate/fsdp_full_shard.yaml) and HYBRID_SHARD on
2 "nodes" x 2 ranks (accelerate/fsdp_hybrid.yaml, two launches), a bf16 base, bf16 mixed
precision with the precision policy of definemed.training.cpt, FSDP's activation checkpointing,
sync_each_batch, sharded state dicts, rank-0-only loading.

Cost (2-core machine, measured 2026-12-02): the whole file 158 s; an uninterrupted 6-step run 27-28 s,
killed + resumed 34 s (full) and 53 s (hybrid); one reference run per layout is shared. `slow`.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO, build_tiny_cpt_inputs, cpt_job_settings
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

LAYOUTS = {
    # accelerate config, machines (launches), processes per machine
    "full": ("accelerate/fsdp_full_shard.yaml", 1, 2),
    "hybrid": ("accelerate/fsdp_hybrid.yaml", 2, 2),
}
STEPS, SAVE_STEPS = 6, 2


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def bf16_inputs(tmp_path_factory):
    """A tiny Qwen2.5-like base saved in bfloat16 (as the paper's bases) and a packed corpus."""
    return build_tiny_cpt_inputs(tmp_path_factory.mktemp("fsdp-trainer"), dtype=torch.bfloat16)


def settings(**extra) -> dict:
    return cpt_job_settings(
        epochs=1,
        effective_batch_sequences=4,
        micro_batch_size=1,
        save_steps=SAVE_STEPS,
        warmup_steps=1,
        learning_rate=1e-3,
        gradient_checkpointing=True,  # FSDP's, from the accelerate config
        **extra,
    )


def launch(inputs, layout, work, out, record=None, callbacks=()):
    """One `accelerate launch` per machine of `layout`, each in its own process group."""
    config, machines, per_machine = LAYOUTS[layout]
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEFINEMED_JOB_END")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "tests" / "support" / "harnesses"))
    if record:
        env["DEFINEMED_TEST_FSDP_RECORD"] = str(record)
    procs = []
    for machine in range(machines):
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / config)]
        cmd += ["--num_machines", str(machines), "--machine_rank", str(machine)]
        cmd += ["--num_processes", str(machines * per_machine)]
        cmd += ["--main_process_ip", "127.0.0.1", "--main_process_port", str(port)]
        cmd += [str(REPO / "tests" / "support" / "harnesses" / "fsdp_trainer_run.py")]
        cmd += ["--run", "t", "--packed", str(inputs / "packed"), "--base", str(inputs / "base")]
        cmd += ["--settings", json.dumps(settings(callbacks=list(callbacks))), "--seed", "3", "--max-steps", str(STEPS)]
        cmd += ["--work-dir", str(work), "--out", str(out / "model"), "--out-log", str(out / "log.jsonl")]
        cmd += ["--out-summary", str(out / "summary.json"), "--threads", "1"]
        log = open(out / f"launch-{machine}.log", "a")  # noqa: SIM115 (closed with the process)
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True))
    return procs


def wait(procs, out, timeout=600) -> str:
    deadline = time.time() + timeout
    for p in procs:
        p.wait(timeout=max(1, deadline - time.time()))
    text = "".join(f.read_text() for f in sorted(out.glob("launch-*.log")))
    assert all(p.returncode == 0 for p in procs), text[-4000:]
    return text


@pytest.fixture(scope="module", params=list(LAYOUTS))
def reference(request, bf16_inputs, tmp_path_factory):
    """One uninterrupted run per layout, shared by every test of that layout."""
    layout = request.param
    root = tmp_path_factory.mktemp(f"reference-{layout}")
    t0 = time.time()
    wait(launch(bf16_inputs, layout, root / "work", root / "out", record=root / "record.jsonl"), root / "out")
    print(f"\n{layout}: uninterrupted {STEPS}-step run {time.time() - t0:.0f} s")
    return layout, root


def test_trainer_shards_with_the_paper_precision_and_fp32_rotary_buffers(reference, bf16_inputs):
    from transformers import AutoConfig

    from definemed.training.cpt import attention_kernel

    layout, root = reference
    _, machines, per_machine = LAYOUTS[layout]
    world = machines * per_machine
    record = [json.loads(line) for line in (root / "record.jsonl").read_text().splitlines()]
    wraps = {r["rank"]: r for r in record if r["event"] == "wrap"}
    assert sorted(wraps) == list(range(world))
    # fsdp_cpu_ram_efficient_loading: rank 0 alone reads the weights, the others build the shape only
    assert {r: w["loaded_meta"] for r, w in wraps.items()} == {r: r != 0 for r in range(world)}
    base = load_file(bf16_inputs / "base" / "model.safetensors")
    checksum = sum(t.double().abs().sum().item() for t in base.values())
    for rank, w in wraps.items():
        strategy = {"full": "FULL_SHARD", "hybrid": "HYBRID_SHARD"}[layout]
        assert w["strategy"] == strategy, w
        # sharded within the group of `shard_group` ranks, replicated across `replicate_group`
        assert (w["shard_group"], w["replicate_group"]) == ((2, 1) if layout == "full" else (2, 2)), w
        assert w["local_numel"] < w["total_numel"] <= w["local_numel"] * w["shard_group"], w
        # every rank starts from rank 0's weights (sync_module_states broadcast them to the meta ranks)
        assert w["checksum"] == pytest.approx(checksum, rel=1e-12), rank
        assert w["buffers"] == wraps[0]["buffers"] and any("inv_freq" in n for n in w["buffers"]), rank
    summary = json.loads((root / "out" / "summary.json").read_text())
    assert summary["steps"] == STEPS and summary["world_size"] == world
    assert summary["fsdp"]["activation_checkpointing"] is True
    assert summary["fsdp_mixed_precision"] == {
        "param_dtype": "bfloat16",
        "reduce_dtype": "float32",
        "buffer_dtype": "float32",
    }
    # the rotary buffers stayed fp32 through every step (accelerate's default policy makes them bf16)
    assert summary["rotary_buffer_dtypes"] == {
        "model.rotary_emb.inv_freq": ["float32"],
        "model.rotary_emb.original_inv_freq": ["float32"],
    }
    assert summary["compute_dtype"] == "bfloat16"
    config = AutoConfig.from_pretrained(bf16_inputs / "base")
    assert summary["attention_kernel"] == attention_kernel(config, "sdpa", torch.bfloat16, "cpu")
    # gradients reduced after every micro batch (no unsharded gradients kept between them)
    assert summary["gradient_accumulation_steps"] == 4 // world
    assert all(w["sync_each_batch"] is True for w in wraps.values())
    assert all(w["checkpointed_layers"] == 2 for w in wraps.values())  # FSDP's activation checkpointing


def dcp(folder) -> dict:
    """A DCP checkpoint folder read back without a process group."""
    import tempfile

    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with tempfile.TemporaryDirectory() as tmp:
        dcp_to_torch_save(str(folder), f"{tmp}/state.pt")
        return torch.load(f"{tmp}/state.pt", weights_only=False)


def flat(tree, prefix=""):
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(flat(v, f"{prefix}{k}/"))
        return out
    if isinstance(tree, list):
        return flat(dict(enumerate(tree)), prefix)
    return {prefix: tree}


def test_final_model_is_gathered_in_the_base_dtype_loads_with_the_same_logits_and_merges(
    reference, bf16_inputs, tmp_path
):
    from transformers import AutoConfig, AutoModelForCausalLM

    from definemed.training.merge import MergeSettings, run_slerp

    layout, root = reference
    final = root / "out" / "model"
    saved = load_file(final / "model.safetensors")
    assert {t.dtype for t in saved.values()} == {torch.bfloat16}
    assert json.loads((final / "config.json").read_text())["dtype"] == "bfloat16"
    # the gathered weights are the trained fp32 master weights of the last checkpoint, in bf16
    trained = dcp(root / "work" / f"checkpoint-{STEPS}" / "pytorch_model_fsdp_0")["model"]
    assert saved.keys() == trained.keys()
    assert all(torch.equal(saved[k], trained[k].to(torch.bfloat16)) for k in saved)
    base = load_file(bf16_inputs / "base" / "model.safetensors")
    assert any(not torch.equal(saved[k], base[k]) for k in saved)  # it trained
    loaded = AutoModelForCausalLM.from_pretrained(final).eval()
    assert loaded.dtype == torch.bfloat16
    assert loaded.model.rotary_emb.inv_freq.dtype == torch.float32
    built = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(final), dtype=torch.bfloat16).eval()
    built.load_state_dict({k: v.to(torch.bfloat16) for k, v in trained.items()}, strict=False)
    ids = torch.randint(0, 400, (2, 48), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, built(ids).logits)
    run_slerp(
        bf16_inputs / "base",
        final,
        tmp_path / "merged",
        MergeSettings.from_config({"t": [{"value": 0.5}], "dtype": "float16"}),
    )
    merged = load_file(tmp_path / "merged" / "model.safetensors")
    assert merged.keys() == saved.keys() and {t.dtype for t in merged.values()} == {torch.float16}


def test_run_killed_after_a_checkpoint_resumes_to_the_uninterrupted_weights_and_moments(
    reference, bf16_inputs, tmp_path
):
    """SIGKILL of every process once the first checkpoint is complete (the run stalls there by
    tests/support/harnesses/stall_callback.py), then the same command: it resumes and ends where the
    uninterrupted run ended, bitwise: final model, the last checkpoint's sharded weights and AdamW's
    moments."""
    from definemed.checkpoints import last_complete_checkpoint

    layout, ref = reference
    _, machines, per_machine = LAYOUTS[layout]
    world = machines * per_machine
    work, out = tmp_path / "work", tmp_path / "out"
    t0 = time.time()
    procs = launch(bf16_inputs, layout, work, out, callbacks=["stall_callback:StallAfterFirstCheckpoint"])
    deadline = time.time() + 600
    while len(list(work.glob("stalled-*.pid"))) < world:
        assert all(p.poll() is None for p in procs), "".join(f.read_text() for f in out.glob("launch-*.log"))[-4000:]
        assert time.time() < deadline
        time.sleep(0.2)
    assert last_complete_checkpoint(work, world) == str(work / f"checkpoint-{SAVE_STEPS}")
    for pid_file in work.glob("stalled-*.pid"):  # the training processes (torchrun starts each in its session)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
    for p in procs:  # and the launchers
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    for pid_file in work.glob("stalled-*.pid"):
        pid_file.unlink()
    assert not (out / "model").exists()
    text = wait(launch(bf16_inputs, layout, work, out, callbacks=["stall_callback:StallAfterFirstCheckpoint"]), out)
    print(f"\n{layout}: killed + resumed runs {time.time() - t0:.0f} s")
    assert f"resuming from {work / f'checkpoint-{SAVE_STEPS}'}" in text
    a = load_file(ref / "out" / "model" / "model.safetensors")
    b = load_file(out / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    last = f"checkpoint-{STEPS}"
    for folder in ("pytorch_model_fsdp_0", "optimizer_0"):
        x = flat(dcp(ref / "work" / last / folder))
        y = flat(dcp(work / last / folder))
        assert x.keys() == y.keys(), folder
        for k in x:
            same = torch.equal(x[k], y[k]) if isinstance(x[k], torch.Tensor) else x[k] == y[k]
            assert same, (folder, k)
    moments = [k for k in x if k.endswith("/exp_avg/")]
    assert moments and all(float(x[k].abs().sum()) > 0 for k in moments)
    steps = {float(v) for k, v in x.items() if k.endswith("/step/")}
    assert steps == {float(STEPS)}  # AdamW's step count carried through the resume
