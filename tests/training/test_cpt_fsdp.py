"""Continual pre-training under FSDP (paper 4.2, A.3): resuming from the checkpoints the Trainer
writes under FSDP, the consolidated final model, the memory settings and the checkpoint before
Slurm's time limit. The layouts come from accelerate's own writers in a CPU FSDP1 process
(tests/support/harnesses/fsdp_cpu_run.py); file names from the libraries' constants."""

import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, build_tiny_cpt_inputs, cpt_job_settings
from safetensors.torch import load_file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fsdp-cpu")
    env = dict(os.environ, MASTER_PORT=str(free_port()), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "support" / "harnesses" / "fsdp_cpu_run.py"), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.mark.parametrize("kind", ["SHARDED_STATE_DICT", "FULL_STATE_DICT", "LOCAL_STATE_DICT", "NO_FSDP"])
def test_final_model_is_consolidated_in_bfloat16_whatever_the_state_dict_type(fsdp_run, kind):
    from transformers import AutoModelForCausalLM
    from transformers.utils import SAFE_WEIGHTS_NAME

    final = fsdp_run / kind / "final"
    reference = load_file(fsdp_run / kind / "reference.safetensors")
    saved = load_file(final / SAFE_WEIGHTS_NAME)
    assert saved.keys() == reference.keys()
    for name, tensor in reference.items():
        assert saved[name].dtype == torch.bfloat16, name
        assert torch.equal(saved[name], tensor.to(torch.bfloat16)), name
    assert json.loads((final / "config.json").read_text())["dtype"] == "bfloat16"
    assert (final / "generation_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(final)
    assert model.dtype == torch.bfloat16
    assert torch.equal(model.lm_head.weight, reference["lm_head.weight"].to(torch.bfloat16))


def copy_checkpoint(fsdp_run, kind, work, step=1):
    from transformers.trainer import TRAINER_STATE_NAME

    dest = work / f"checkpoint-{step}"
    shutil.copytree(fsdp_run / kind / "checkpoint-2", dest)
    state = json.loads((dest / TRAINER_STATE_NAME).read_text())
    (dest / TRAINER_STATE_NAME).write_text(json.dumps(dict(state, global_step=step)))
    return dest


def test_complete_fsdp_checkpoints_are_resumed(fsdp_run, tmp_path):
    from definemed.checkpoints import last_complete_checkpoint

    for kind in ("SHARDED_STATE_DICT", "FULL_STATE_DICT"):
        work = tmp_path / kind
        checkpoint = copy_checkpoint(fsdp_run, kind, work, 100)
        assert last_complete_checkpoint(work) == str(checkpoint), kind
        # and accelerate's readers restore from it the trained weights and the optimizer's step
        reference = load_file(fsdp_run / kind / "reference.safetensors")
        resumed = load_file(fsdp_run / kind / "resumed.safetensors")
        assert resumed.keys() == reference.keys() and all(torch.equal(resumed[k], reference[k]) for k in reference)
        steps = json.loads((fsdp_run / kind / "resumed_optimizer_steps.json").read_text())
        assert steps and set(steps) == {2.0}, kind
        moments = load_file(fsdp_run / kind / "moments.safetensors")
        loaded = load_file(fsdp_run / kind / "resumed_moments_initialised.safetensors")
        assert loaded.keys() == moments.keys() and all(torch.equal(loaded[k], moments[k]) for k in moments)


def test_sharded_optimizer_state_needs_an_initialised_optimizer_to_load_into(fsdp_run):
    """accelerate's load_fsdp_optimizer into the Trainer's fresh AdamW reads no moments from a
    sharded checkpoint (the reason for definemed.training.cpt.init_optimizer_state); from a full one it does."""
    assert load_file(fsdp_run / "SHARDED_STATE_DICT" / "resumed_moments.safetensors") == {}
    full = load_file(fsdp_run / "FULL_STATE_DICT" / "resumed_moments.safetensors")
    assert full.keys() == load_file(fsdp_run / "FULL_STATE_DICT" / "moments.safetensors").keys()


def sharded_dcp_folder(name):
    from accelerate.utils.constants import FSDP_MODEL_NAME
    from accelerate.utils.constants import OPTIMIZER_NAME as FSDP_OPTIMIZER_NAME

    return {"model": f"{FSDP_MODEL_NAME}_0", "optimizer": f"{FSDP_OPTIMIZER_NAME}_0"}[name]


def partial_checkpoints():
    """(state-dict type, what a kill left out) for each writer of a checkpoint."""
    from accelerate.utils.constants import FSDP_MODEL_NAME
    from torch.distributed.checkpoint.filesystem import _metadata_fn as dcp_metadata
    from transformers.trainer import OPTIMIZER_NAME_BIN, SCHEDULER_NAME, TRAINER_STATE_NAME

    return [
        ("SHARDED_STATE_DICT", f"{sharded_dcp_folder('optimizer')}/{dcp_metadata}"),
        ("SHARDED_STATE_DICT", f"{sharded_dcp_folder('model')}/{dcp_metadata}"),
        ("SHARDED_STATE_DICT", sharded_dcp_folder("optimizer")),
        ("SHARDED_STATE_DICT", TRAINER_STATE_NAME),
        ("SHARDED_STATE_DICT", SCHEDULER_NAME),
        ("SHARDED_STATE_DICT", "rng_state.pth"),
        ("FULL_STATE_DICT", OPTIMIZER_NAME_BIN),
        ("FULL_STATE_DICT", f"{FSDP_MODEL_NAME}.bin"),
        ("FULL_STATE_DICT", TRAINER_STATE_NAME),
    ]


@pytest.mark.parametrize("kind,left_out", partial_checkpoints())
def test_partial_fsdp_checkpoint_is_refused_for_the_last_complete_one(fsdp_run, tmp_path, kind, left_out):
    from definemed.checkpoints import last_complete_checkpoint

    older = copy_checkpoint(fsdp_run, kind, tmp_path, 100)
    newer = copy_checkpoint(fsdp_run, kind, tmp_path, 200)
    target = newer / left_out
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    assert last_complete_checkpoint(tmp_path) == str(older)
    shutil.rmtree(older)
    assert last_complete_checkpoint(tmp_path) is None


def test_truncated_trainer_state_and_missing_ranks_are_refused(fsdp_run, tmp_path):
    from transformers.trainer import TRAINER_STATE_NAME

    from definemed.checkpoints import checkpoint_problem

    checkpoint = copy_checkpoint(fsdp_run, "SHARDED_STATE_DICT", tmp_path, 100)
    assert checkpoint_problem(checkpoint) is None
    # a job of 2 processes writes rng_state_0.pth and rng_state_1.pth (trainer.py _save_rng_state)
    (checkpoint / "rng_state.pth").rename(checkpoint / "rng_state_0.pth")
    assert "rng_state_1.pth" in checkpoint_problem(checkpoint, world_size=2)
    shutil.copy(checkpoint / "rng_state_0.pth", checkpoint / "rng_state_1.pth")
    assert checkpoint_problem(checkpoint, world_size=2) is None
    text = (checkpoint / TRAINER_STATE_NAME).read_text()
    (checkpoint / TRAINER_STATE_NAME).write_text(text[: len(text) // 2])
    assert "unreadable" in checkpoint_problem(checkpoint, world_size=2)


def test_checkpoints_without_fsdp_resume_as_before(tmp_path):
    from transformers.trainer import OPTIMIZER_NAME, SCHEDULER_NAME, TRAINER_STATE_NAME
    from transformers.utils import SAFE_WEIGHTS_NAME

    from definemed.checkpoints import last_complete_checkpoint

    for step in (10, 20):
        c = tmp_path / f"checkpoint-{step}"
        c.mkdir()
        for name in (SAFE_WEIGHTS_NAME, OPTIMIZER_NAME, SCHEDULER_NAME, "rng_state.pth"):
            torch.save({}, c / name)
        (c / TRAINER_STATE_NAME).write_text(json.dumps({"global_step": step}))
    (tmp_path / "checkpoint-20.partial").mkdir()  # not a checkpoint name the Trainer writes
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-20")
    (tmp_path / "checkpoint-20" / OPTIMIZER_NAME).unlink()
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")


def test_fsdp_training_arguments_reduce_every_micro_batch_and_checkpoint_in_fsdp():
    from transformers import TrainingArguments

    from definemed.config import load
    from definemed.training.cpt import CptSettings, fsdp_launch, memory_arguments

    settings = CptSettings.from_config(cpt_job_settings(load(REPO / "config.yaml")))
    assert fsdp_launch({}) is None
    assert memory_arguments(settings, None) == {"activation_checkpointing": settings.gradient_checkpointing}
    for config_file in sorted((REPO / "accelerate").glob("*.yaml")):
        fsdp_config = yaml.safe_load(config_file.read_text())["fsdp_config"]
        # the environment accelerate launch exports from the file (accelerate utils/launch.py)
        env = {
            "ACCELERATE_USE_FSDP": "true",
            "FSDP_STATE_DICT_TYPE": fsdp_config["fsdp_state_dict_type"],
            "FSDP_ACTIVATION_CHECKPOINTING": str(fsdp_config["fsdp_activation_checkpointing"]).lower(),
        }
        kwargs = memory_arguments(settings, fsdp_launch(env))
        args = TrainingArguments(output_dir="unused", report_to=[], use_cpu=True, **kwargs)
        assert args.activation_checkpointing is False, config_file.name  # transformers refuses both
        assert args.accelerator_config.gradient_accumulation_kwargs == {"sync_each_batch": True}
        assert fsdp_config["fsdp_activation_checkpointing"] is settings.gradient_checkpointing
    env["FSDP_ACTIVATION_CHECKPOINTING"] = "false"
    with pytest.raises(ValueError, match="fsdp_activation_checkpointing"):
        memory_arguments(dataclasses.replace(settings, gradient_checkpointing=True), fsdp_launch(env))


def test_deadline_is_the_slurm_end_less_the_margin():
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from definemed.training.cpt import CptSettings, save_before_time_limit_callback, slurm_deadline

    settings = CptSettings.from_config(cpt_job_settings(save_before_time_limit_minutes=15))
    assert slurm_deadline(settings, {}) is None
    assert slurm_deadline(settings, {"DEFINEMED_JOB_END_TIME": "10000"}) == 10000 - 900
    args = TrainingArguments(output_dir="unused", report_to=[], use_cpu=True)
    state = TrainerState(global_step=7)
    before = save_before_time_limit_callback(time.time() + 3600, signal.SIGUSR2)
    control = before.on_step_end(args, state, TrainerControl())
    assert not control.should_save and not control.should_training_stop and before.stopped_at is None
    after = save_before_time_limit_callback(time.time() - 1, signal.SIGUSR2)
    control = after.on_step_end(args, state, TrainerControl())
    assert control.should_save and control.should_training_stop and after.stopped_at == 7
    signal.signal(signal.SIGUSR2, signal.SIG_DFL)


@pytest.fixture(scope="module")
def tiny_cpt_inputs(tmp_path_factory):
    """A tiny Qwen2.5-like base and a packed corpus, built offline in seconds."""
    return build_tiny_cpt_inputs(tmp_path_factory.mktemp("tiny-cpt"))


def start_cpt(inputs, work, out):
    """scripts/train_cpt.py in 2 CPU processes (data parallel over gloo) through accelerate launch,
    as tests/support/overlays/slurm_overlay.yaml launches it."""

    settings = cpt_job_settings(
        epochs=1,
        effective_batch_sequences=4,
        micro_batch_size=1,
        save_steps=1000,
        warmup_steps=1,
        learning_rate=1e-3,
    )
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    cmd += ["--main_process_port", str(free_port()), str(REPO / "scripts" / "train_cpt.py")]
    cmd += ["--run", "t", "--packed", str(inputs / "packed"), "--base", str(inputs / "base")]
    cmd += ["--settings", json.dumps(settings), "--seed", "3", "--work-dir", str(work)]
    cmd += ["--out", str(out / "model"), "--out-log", str(out / "log.jsonl")]
    cmd += ["--out-summary", str(out / "summary.json"), "--threads", "1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEFINEMED_JOB_END")}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def training_process(work, rank: int) -> int:
    """The pid of the training process of `rank` that writes into `work` (Linux /proc)."""
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # not ours, or gone
            continue
        if (
            str(work).encode() in cmdline
            and b"train_cpt.py" in b" ".join(cmdline)
            and f"RANK={rank}".encode() in environ
        ):
            return int(proc.name)
    raise AssertionError(f"no training process of rank {rank} for {work}")


def test_sigusr1_to_one_rank_checkpoints_all_ranks_and_the_rerun_resumes_to_equal_weights(tiny_cpt_inputs, tmp_path):
    """Real processes, a real signal, to one rank of two: both ranks save the same step (a
    checkpoint between save_steps, with both RNG files), the job fails (Snakemake retries it)
    without a model; the rerun resumes and ends with the weights of an uninterrupted run."""
    ref = start_cpt(tiny_cpt_inputs, tmp_path / "ref-work", tmp_path / "ref")
    assert ref.wait(timeout=600) == 0, ref.stdout.read()[-3000:]
    planned = json.loads((tmp_path / "ref" / "summary.json").read_text())["steps"]
    assert planned >= 20

    work = tmp_path / "work"
    proc = start_cpt(tiny_cpt_inputs, work, tmp_path / "run")
    deadline = time.time() + 600
    while not ((work / "throughput.jsonl").exists() and (work / "throughput.jsonl").read_text().count("\n") >= 2):
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.01)
    os.kill(training_process(work, 1), signal.SIGUSR1)
    out = proc.stdout.read()
    assert proc.wait(timeout=600) != 0, out[-3000:]
    assert out.count("before the time limit; rerun to resume") >= 2, out[-3000:]  # both ranks stopped
    (checkpoint,) = work.glob("checkpoint-*")
    assert 2 <= int(checkpoint.name.split("-")[1]) < planned
    assert (checkpoint / "rng_state_0.pth").exists() and (checkpoint / "rng_state_1.pth").exists()
    assert not (tmp_path / "run" / "model").exists()

    resumed = start_cpt(tiny_cpt_inputs, work, tmp_path / "run")
    out = resumed.stdout.read()
    assert resumed.wait(timeout=600) == 0, out[-3000:]
    assert f"resuming from {checkpoint}" in out
    a = load_file(tmp_path / "ref" / "model" / "model.safetensors")
    b = load_file(tmp_path / "run" / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the saved model is what the merge takes (mergekit, paper A.4)
    from definemed.training.merge import MergeSettings, run_slerp

    run_slerp(
        tiny_cpt_inputs / "base",
        tmp_path / "run" / "model",
        tmp_path / "merged",
        MergeSettings.from_config({"t": [{"value": 0.5}], "dtype": "float16"}),
    )
    merged = load_file(tmp_path / "merged" / "model.safetensors")
    assert merged.keys() == b.keys() and {t.dtype for t in merged.values()} == {torch.float16}


def test_launcher_exports_the_slurm_job_end_and_shields_launchers_from_sigusr1(tmp_path):
    """scripts/launch_cpt.sh in a (one-task) Slurm job: scontrol's EndTime reaches the training
    process as DEFINEMED_JOB_END_TIME, and the launcher starts with SIGUSR1 ignored (a process
    that installs a handler, as the training does, still receives it)."""
    from datetime import datetime

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(
        "#!/bin/sh\necho 'JobId=7 NumNodes=1 NumTasks=1 CPUs/Task=2 NodeList=n1 EndTime=2026-12-01T12:00:00'\n"
    )
    scontrol.chmod(0o755)
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import json, os, signal\n"
        "print(json.dumps({'end': os.environ.get('DEFINEMED_JOB_END_TIME'),"
        " 'usr1_ignored': signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "DEFINEMED_"))}
    env.update(SLURM_JOB_ID="7", PATH=f"{bin_dir}{os.pathsep}{env['PATH']}")
    proc = subprocess.run(
        [str(REPO / "scripts" / "launch_cpt.sh"), "1", sys.executable, str(probe)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert int(seen["end"]) == int(datetime.fromisoformat("2026-12-01T12:00:00").timestamp())
    assert seen["usr1_ignored"] is True


@pytest.mark.parametrize("architecture", ["qwen2", "mistral"])
def test_parameter_count_formula_matches_transformers(architecture):
    from transformers import MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from definemed.plan import decoder_parameters

    shape = {
        "vocab_size": 320,
        "hidden_size": 48,
        "intermediate_size": 80,
        "num_hidden_layers": 3,
        "num_attention_heads": 6,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "tie_word_embeddings": False,
        "attention_bias": architecture == "qwen2",
    }
    config_class, model_class = {
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
        "mistral": (MistralConfig, MistralForCausalLM),
    }[architecture]
    kwargs = {k: v for k, v in shape.items() if k != "attention_bias"}
    model = model_class(config_class(**kwargs))
    assert decoder_parameters(shape)["total"] == sum(p.numel() for p in model.parameters())


def test_memory_plan_of_the_paper_run():
    from definemed.config import load
    from definemed.plan import HUB_MODEL_SHAPES, cpt_checkpoint_disk, cpt_memory, cpt_memory_table, decoder_parameters

    cpt_bases = (
        "mistralai/Mistral-7B-Instruct-v0.3",
        "Qwen/Qwen2.5-7B-Instruct",
        "mistralai/Mistral-Small-24B-Instruct-2501",
    )
    billions = {repo: round(decoder_parameters(HUB_MODEL_SHAPES[repo])["total"] / 1e9, 2) for repo in cpt_bases}
    # the model cards' 7.25B and 7.61B (7.62B counting Qwen's untied LM head), the paper's 23.6B (4.1)
    assert billions == {
        "mistralai/Mistral-7B-Instruct-v0.3": 7.25,
        "Qwen/Qwen2.5-7B-Instruct": 7.62,
        "mistralai/Mistral-Small-24B-Instruct-2501": 23.57,
    }
    config = load(REPO / "config.yaml")
    table, too_big = cpt_memory_table(config, REPO)
    assert too_big == [] and "DOES NOT FIT" not in table
    # Qwen2.5-7B (152k vocabulary: 7 GiB of loss) comes to about 32.2 GiB (34.6 GB) of an A100's 40 GiB
    tight = [run for run, spec in config["cpt"]["runs"].items() if spec["base"] == "qwen2.5-7b-instruct"]
    assert tight and f"TIGHT: {', '.join(tight)}" in table
    for run in config["cpt"]["runs"]:
        fits = "TIGHT" if run in tight else "yes"
        assert re.search(rf"^  {re.escape(run)}\s+\d+ \w+/\d+ .* {fits}\s+\d+\s+\d+$", table, re.M), table
    qwen = HUB_MODEL_SHAPES["Qwen/Qwen2.5-7B-Instruct"]
    assert 34e9 < cpt_memory(qwen, 8, 8, "HYBRID_SHARD", 4096, 1, True)["total"] < 37e9
    # A.3: Mistral-Small-24B did not fit with per-node sharding on Leonardo's 4 A100-64GB per node
    shape = HUB_MODEL_SHAPES["mistralai/Mistral-Small-24B-Instruct-2501"]
    assert cpt_memory(shape, 4, 32, "HYBRID_SHARD", 4096, 1, True)["total"] > 64 * 2**30
    assert cpt_memory(shape, 4, 32, "FULL_SHARD", 4096, 1, True)["total"] < 64 * 2**30
    runs = config["cpt"]["runs"]
    hybrid = dict(
        config,
        cpt=dict(
            config["cpt"],
            runs={
                **runs,
                "definemed-mistral-small-24b": dict(
                    runs["definemed-mistral-small-24b"],
                    launcher="accelerate launch --config_file accelerate/fsdp_hybrid.yaml",
                ),
            },
        ),
    )
    table, too_big = cpt_memory_table(hybrid, REPO)
    assert too_big == ["definemed-mistral-small-24b"] and "DOES NOT FIT: definemed-mistral-small-24b" in table
    # the estimate: ~12 bytes a parameter per sharded checkpoint, ~90 GB for a 7B
    disk = cpt_checkpoint_disk(decoder_parameters(HUB_MODEL_SHAPES["Qwen/Qwen2.5-7B-Instruct"])["total"], kept=2)
    assert 85e9 < disk["per_checkpoint"] < 95e9 and disk["peak"] > 3 * disk["per_checkpoint"]


def test_training_reports_the_attention_kernel_sdpa_dispatches_to():
    """The summary names the kernel, not only the setting: SDPA's own choice for the model's shape."""
    import torch
    from torch.nn.attention import SDPBackend
    from transformers import Qwen2Config

    from definemed.training.cpt import attention_kernel

    config = Qwen2Config(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=1)
    kernel = attention_kernel(config, "sdpa", torch.float32, "cpu")
    assert kernel.startswith("sdpa:") and kernel.removeprefix("sdpa:") in SDPBackend.__members__
    assert kernel != "sdpa:ERROR"
    # the dispatcher's answer for this shape, asked directly: a causal float32 CPU call without a mask
    q = torch.zeros(1, 4, 64, 16)
    assert kernel == f"sdpa:{SDPBackend(torch._fused_sdp_choice(q, q, q, None, 0.0, True)).name}"
    assert attention_kernel(config, "flash_attention_2", torch.bfloat16, "cuda") == "flash_attention_2"


def test_fsdp_precision_policy_keeps_buffers_fp32_and_reduces_in_the_configured_dtype():
    """accelerate's own policy for mixed_precision bf16 casts buffers (the rotary inv_freq) to bf16;
    definemed.training.cpt's keeps them fp32 and takes reduce_dtype from cpt.reduce_dtype."""
    from accelerate.utils import FullyShardedDataParallelPlugin

    from definemed.config import load
    from definemed.training.cpt import fsdp_precision_policy, rank0_loads_only

    plugin = FullyShardedDataParallelPlugin(fsdp_version=1, sync_module_states=False, cpu_ram_efficient_loading=False)
    plugin.set_mixed_precision("bf16")  # what AcceleratorState does with mixed_precision: bf16 (state.py)
    assert plugin.mixed_precision_policy.buffer_dtype == torch.bfloat16
    for reduce in ("float32", "bfloat16"):
        fsdp_precision_policy(plugin, "bf16", reduce)
        policy = plugin.mixed_precision_policy
        assert (policy.param_dtype, policy.reduce_dtype, policy.buffer_dtype) == (
            torch.bfloat16,
            getattr(torch, reduce),
            torch.float32,
        )
    assert load(REPO / "config.yaml")["cpt"]["reduce_dtype"] == "float32"
    env = {"ACCELERATE_USE_FSDP": "true", "FSDP_CPU_RAM_EFFICIENT_LOADING": "true"}
    assert rank0_loads_only(env) and not rank0_loads_only({**env, "ACCELERATE_USE_FSDP": "false"})
    assert not rank0_loads_only({"ACCELERATE_USE_FSDP": "true"})
