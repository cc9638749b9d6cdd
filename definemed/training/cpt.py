"""Continual pre-training on packed sequences (paper 4.2, A.3) with transformers' Trainer.

AdamW, linear decay after a warm-up, two epochs, bf16 and activation checkpointing on GPU,
FlashAttention-2 on GPU and SDPA on CPU; FSDP comes from the accelerate config the job is launched
with (then activation checkpointing is FSDP's, gradients are reduced every micro batch in
cpt.reduce_dtype, buffers such as the rotary inv_freq stay fp32, and with
fsdp_cpu_ram_efficient_loading only rank 0 reads the base's weights).
Checkpoints live in a work folder outside the rule's outputs: a job killed at its time limit
continues from its last complete checkpoint (in any layout the Trainer writes, with or without
FSDP), with data order, RNG and optimizer state, when it is rerun (the work folder's history.jsonl
records each start and its checkpoint; results and the model do not); before the Slurm job's end it
writes one and stops. The final model is gathered from whatever sharding into safetensors.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import ClassVar

import numpy as np

from definemed.checkpoints import last_complete_checkpoint
from definemed.config import Settings
from definemed.io import claim_work_dir, drop_load_flags, read_jsonl, sha256_file
from definemed.training.packing import open_packed

log = logging.getLogger(__name__)
# checkpoints kept in the work folder (make plan counts their disk)
CHECKPOINTS_KEPT = 2
# one line per start of the job in its work folder: from which checkpoint it resumed (record_attempt)
HISTORY_FILE = "history.jsonl"
# one line per logged optimizer step in the work folder (throughput_callback; training_log reads it)
THROUGHPUT_FILE = "throughput.jsonl"


def _not_weights():
    """A setting that does not shape the trained weights: changing it (a tracker callback, the site
    name, the time-limit margin) keeps a run's checkpoints, so the rerun resumes instead of
    restarting."""
    return dataclasses.field(metadata={"shapes_weights": False})


@dataclasses.dataclass(frozen=True)
class CptSettings(Settings):
    """The cpt section as a training job reads it (without its runs and resources)."""

    SECTION: ClassVar[str] = "cpt"
    sequence_length: int
    heldout_fraction: float
    pack_window_documents: int
    epochs: float
    effective_batch_sequences: int
    micro_batch_size: int
    learning_rate: float
    weight_decay: float
    adam_beta1: float
    adam_beta2: float
    warmup_steps: int
    gradient_checkpointing: bool
    reduce_dtype: str
    attention: str
    document_masking: bool
    save_steps: int
    save_before_time_limit_minutes: float = _not_weights()
    peak_tflops_per_device: float | None = _not_weights()
    cluster: str = _not_weights()
    launcher: str = _not_weights()
    callbacks: list[str] = _not_weights()

    def weight_settings(self) -> dict:
        """The settings a checkpoint belongs to (its work folder's fingerprint)."""
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("shapes_weights", True)
        }


class PackedDataset:
    """Sequences of a packed corpus as causal-LM examples; padding is masked out of the loss."""

    def __init__(self, packed_dir, document_masking: bool = False, eos_id: int | None = None):
        self.tokens, self.lengths = open_packed(packed_dir)
        self.document_masking = document_masking
        self.eos_id = eos_id

    def __len__(self):
        return len(self.lengths)

    def __getitem__(self, i):
        import torch

        ids = torch.from_numpy(self.tokens[i].astype(np.int64))
        n = int(self.lengths[i])
        labels = ids.clone()
        labels[n:] = -100
        item = {"input_ids": ids, "labels": labels}
        if self.document_masking:
            # positions restart after every EOS: flash-attention's varlen path then keeps each
            # document to itself (the paper lets documents in one sequence attend to each other)
            ends = (ids == self.eos_id).nonzero().flatten().tolist()
            pos, start = torch.zeros_like(ids), 0
            for end in [*ends, len(ids) - 1]:
                pos[start : end + 1] = torch.arange(end + 1 - start)
                start = end + 1
            item["position_ids"] = pos
        else:
            item["attention_mask"] = (torch.arange(len(ids)) < n).long()
        return item


def save_final_model(wrapped, model, out_dir, dtype, is_main: bool) -> None:
    """Write the trained weights as one consolidated model in `dtype` (safetensors, config,
    generation config) whatever wraps them: FSDP with any state-dict type, DDP or nothing.

    Every rank calls it: under FSDP the gather is collective. Trainer.save_model writes weights
    under FSDP only for FULL_STATE_DICT (transformers trainer.py `save_model`), and the paper's
    launch shards the state dict; torch's get_model_state_dict gathers a full state dict on the
    CPU of the main process for FSDP1, FSDP2, DDP and a bare module alike (`wrapped`: the
    Trainer's model_wrapped; `model`: the bare PreTrainedModel it wraps)."""
    import copy

    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    distributed = wrapped is not model
    # cpu_offload gathers onto the main process's CPU. With parameters already on the CPU, FSDP1's
    # offload (_unshard_param_utils.py: handle.to_cpu(), _flat_param.py to_cpu) would free the storage
    # the state dict still views: flat_param.to("cpu") of a CPU tensor is the tensor itself, and
    # _free_unsharded_flat_param then resizes that storage to 0 (rank 0 reads freed memory: SIGSEGV).
    # On GPUs .to("cpu") copies and the offload is what keeps the full model off the GPU.
    on_accelerator = any(p.device.type != "cpu" for p in wrapped.parameters())
    options = StateDictOptions(full_state_dict=True, cpu_offload=distributed and on_accelerator)
    state = get_model_state_dict(wrapped, options=options)
    if not is_main:
        return
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.save_pretrained(str(out_dir), state_dict=state)
    # save_pretrained records the dtype of the parameters in memory (fp32 master weights under
    # mixed precision): the config names the dtype written
    config = copy.deepcopy(model.config)
    config.dtype = dtype
    config.save_pretrained(str(out_dir))


def wait_for_claim(work_dir, request: dict, timeout: float = 600) -> None:
    stamp = Path(work_dir) / "request.json"
    text = json.dumps(request, sort_keys=True, indent=1)
    deadline = time.time() + timeout
    while not (stamp.exists() and stamp.read_text() == text):
        if time.time() > deadline:
            raise TimeoutError(f"{stamp}: rank 0 did not prepare the work folder")
        time.sleep(1)


def init_optimizer_state(model, optimizer) -> None:
    """Give a fresh optimizer its state tensors (zeros, by a step at learning rate 0), as torch's
    get_optimizer_state_dict does, so that a sharded optimizer checkpoint can be loaded into it.

    accelerate's load_fsdp_optimizer (FSDP1, SHARDED_STATE_DICT) reads the DCP folder into the
    template FSDP.optim_state_dict(model, optimizer) gives; the Trainer loads before the first
    step, when AdamW has no state yet, so the template has no moments and none are read: the run
    would resume with fresh AdamW moments and step counts (tests/training/test_cpt_fsdp.py shows it)."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    get_optimizer_state_dict(model, getattr(optimizer, "optimizer", optimizer))


def fsdp_precision_policy(plugin, mixed_precision: str, reduce_dtype: str) -> None:
    """Set FSDP1's MixedPrecision on accelerate's FSDP plugin: parameters in `mixed_precision`
    (bf16, paper 4.2), buffers kept in fp32, gradients reduced in `reduce_dtype` (cpt.reduce_dtype).

    accelerate 1.15 builds MixedPrecision(param_dtype=bf16, reduce_dtype=bf16, buffer_dtype=bf16)
    (state.py: fsdp_plugin.set_mixed_precision(mixed_precision); utils/dataclasses.py
    set_mixed_precision: buffer_dtype = fp32 only with buffer_autocast=True, which no caller passes),
    and FSDP1 casts every buffer to buffer_dtype at the root's first forward
    (torch/distributed/fsdp/_runtime_utils.py _cast_buffers_to_dtype_and_device). The rotary
    `inv_freq` is such a buffer, kept fp32 by from_pretrained and read as fp32 by the rotary
    embedding: in bf16 (8-bit mantissa) the angle of a position in the thousands is off by radians.
    This takes accelerate's own switch (buffer_autocast=True: buffer_dtype fp32) and then sets
    reduce_dtype. FSDP2 (fully_shard) casts no buffers at all, but the launch configs, the
    checkpoint layouts and the resume path here are FSDP1's; FSDP2 raises instead of guessing."""
    import dataclasses

    import torch

    if plugin.fsdp_version != 1:
        raise ValueError("cpt: the precision policy is FSDP1's (fsdp_version: 1 in accelerate/*.yaml)")
    if mixed_precision in (None, "no"):
        return
    plugin.set_mixed_precision(mixed_precision, buffer_autocast=True, override=True)
    plugin.mixed_precision_policy = dataclasses.replace(
        plugin.mixed_precision_policy, reduce_dtype=getattr(torch, reduce_dtype)
    )


def cpt_trainer_class(reduce_dtype: str = "float32"):
    """transformers' Trainer whose resume under FSDP reads the optimizer moments back (above) and
    whose FSDP precision policy keeps buffers in fp32 and reduces gradients in `reduce_dtype`."""
    from transformers import Trainer

    class CPTTrainer(Trainer):
        def create_accelerator_and_postprocess(self):
            super().create_accelerator_and_postprocess()
            plugin = getattr(self.accelerator.state, "fsdp_plugin", None)
            if plugin is not None:  # the model is wrapped later, in train(): the policy applies there
                fsdp_precision_policy(plugin, self.accelerator.state.mixed_precision, reduce_dtype)

        def _load_optimizer_and_scheduler(self, checkpoint):
            if checkpoint is not None and self.is_fsdp_enabled:
                init_optimizer_state(self.model, self.optimizer)
            super()._load_optimizer_and_scheduler(checkpoint)

    return CPTTrainer


def rotary_dtype_callback():
    """A TrainerCallback recording the dtypes of the rotary buffers (`*inv_freq`) after every
    optimizer step, i.e. as FSDP left them after its forward passes (`.seen`: name -> dtypes)."""
    from transformers import TrainerCallback

    class RotaryDtype(TrainerCallback):
        def __init__(self):
            self.seen: dict[str, set[str]] = {}

        def on_step_end(self, args, state, control, model=None, **kw):
            for name, buffer in model.named_buffers():
                if name.endswith("inv_freq"):  # named as in the bare model, without FSDP's wrappers
                    name = name.replace("_fsdp_wrapped_module.", "").replace("_checkpoint_wrapped_module.", "")
                    self.seen.setdefault(name, set()).add(str(buffer.dtype).removeprefix("torch."))

        def summary(self) -> dict:
            return {name: sorted(dtypes) for name, dtypes in sorted(self.seen.items())}

    return RotaryDtype()


def load_base_model(base_model, dtype, attn: str, weights: bool):
    """The base model; with `weights` false its shape only, on the meta device.

    Under FSDP with fsdp_cpu_ram_efficient_loading only rank 0 reads the weights: FSDP1 materialises
    the other ranks' meta modules with accelerate's param_init_fn and broadcasts rank 0's parameters
    and buffers (sync_module_states; for HYBRID_SHARD inter-node from global rank 0, then
    intra-node: torch/distributed/fsdp/_init_utils.py _init_param_handle_from_module).
    transformers 5.24's own switch (distributed/fsdp.py is_fsdp_enabled, true only with a process
    group) reads the full checkpoint on every rank all the same and only skips missing keys and
    non-persistent buffers (modeling_utils.py _move_missing_keys_from_meta_to_device)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if weights:
        return AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype, attn_implementation=attn)
    config = AutoConfig.from_pretrained(base_model)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attn)


def fsdp_launch(env=None) -> dict | None:
    """The FSDP settings `accelerate launch` exported to this process from its config file
    (accelerate utils/launch.py), or None when the job runs without FSDP."""
    env = os.environ if env is None else env
    if env.get("ACCELERATE_USE_FSDP", "false").lower() != "true":
        return None
    return {
        "version": env.get("FSDP_VERSION", "1"),
        "state_dict_type": env.get("FSDP_STATE_DICT_TYPE"),
        "activation_checkpointing": env.get("FSDP_ACTIVATION_CHECKPOINTING", "false").lower() == "true",
    }


def rank0_loads_only(env=None) -> bool:
    """Whether the launch asked for fsdp_cpu_ram_efficient_loading (only rank 0 reads the weights)."""
    env = os.environ if env is None else env
    return fsdp_launch(env) is not None and env.get("FSDP_CPU_RAM_EFFICIENT_LOADING", "false").lower() == "true"


def memory_arguments(settings: CptSettings, fsdp: dict | None) -> dict:
    """TrainingArguments for activation checkpointing and gradient accumulation.

    Under FSDP, activation checkpointing is FSDP's own (the Trainer's would all-gather every layer
    once more in the backward pass; transformers refuses both at once), and gradients are reduced
    after every micro batch (`sync_each_batch`): FSDP1's `no_sync`, which the Trainer enters between
    accumulation steps otherwise, keeps full unsharded gradients on every GPU."""
    if fsdp is None:
        return {"activation_checkpointing": settings.gradient_checkpointing}
    if settings.gradient_checkpointing and not fsdp["activation_checkpointing"]:
        raise ValueError(
            "cpt.gradient_checkpointing is true, but the accelerate config this job was launched with "
            "(cpt.launcher) does not set fsdp_config.fsdp_activation_checkpointing: true"
        )
    return {
        "activation_checkpointing": False,
        "accelerator_config": {"gradient_accumulation_kwargs": {"sync_each_batch": True}},
    }


def slurm_deadline(settings: CptSettings, env=None) -> float | None:
    """The time (epoch seconds) at which to checkpoint and stop: the Slurm job's end, which
    scripts/launch_cpt.sh exports as DEFINEMED_JOB_END_TIME, less cpt.save_before_time_limit_minutes."""
    env = os.environ if env is None else env
    end = env.get("DEFINEMED_JOB_END_TIME")
    if not end:
        return None
    return float(end) - 60 * settings.save_before_time_limit_minutes


def save_before_time_limit_callback(deadline: float | None, signum: int | None = None):
    """A TrainerCallback that makes the Trainer write a complete checkpoint and stop at the end of
    the step in which `signum` (SIGUSR1: `scancel --signal=USR1`, `sbatch --signal=USR1@<s>`) arrived
    or `deadline` passed. Ranks decide together (an all-reduce of the flag every step): a save
    under FSDP is collective, and the signal or the clock may reach one rank a step early."""
    import signal

    from transformers import TrainerCallback

    class SaveBeforeTimeLimit(TrainerCallback):
        def __init__(self):
            self.requested = False
            self.stopped_at = None
            signal.signal(signum or signal.SIGUSR1, self._request)

        def _request(self, *_):
            self.requested = True

        def on_step_end(self, args, state, control, **kw):
            import torch
            import torch.distributed as dist

            flag = self.requested or (deadline is not None and time.time() >= deadline)
            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                t = torch.tensor([int(flag)], device=args.device)
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
                flag = bool(t.item())
            if flag:
                control.should_save = True
                control.should_training_stop = True
                self.stopped_at = state.global_step
            return control

    return SaveBeforeTimeLimit()


class StoppedForTimeLimit(RuntimeError):
    """Training stopped early with a complete checkpoint; a rerun of the job resumes from it."""


def load_callbacks(paths) -> list[type]:
    """The TrainerCallback classes that cpt.callbacks names as "module:Class" import paths (an
    extension point: experiment trackers; the Slurm test's stall), imported in the job, where the
    training env is. Raises ValueError naming cpt.callbacks and the path that does not load."""
    import importlib

    from transformers import TrainerCallback

    classes = []
    for path in paths:
        module, sep, name = path.partition(":")
        if not (sep and module and name):
            raise ValueError(f"cpt.callbacks: {path!r} is not a 'module:Class' import path")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"cpt.callbacks: {path!r} does not import: {e}") from e
        if not (isinstance(cls, type) and issubclass(cls, TrainerCallback)):
            raise ValueError(f"cpt.callbacks: {path!r} is not a transformers TrainerCallback class")
        classes.append(cls)
    return classes


def training_log(work_dir) -> list[dict]:
    """The run's per-step log, one row per step in step order: steps logged after the last
    checkpoint of a killed job were redone on resume, and the redone row is kept."""
    rows = {}
    for row in read_jsonl(Path(work_dir) / THROUGHPUT_FILE):
        rows[row["step"]] = row
    return [rows[k] for k in sorted(rows)]


def throughput_callback(path, tokens_per_step: int, n_params: int, peak_flops: float | None, world_size: int):
    """A TrainerCallback appending step, loss, learning rate, tokens/s per device and MFU to JSONL."""
    from transformers import TrainerCallback

    class Throughput(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.seconds = time.perf_counter() - self.t0

        def on_log(self, args, state, control, logs=None, **kw):
            if not state.is_world_process_zero or "loss" not in (logs or {}):
                return
            per_device = tokens_per_step / world_size / self.seconds
            row = {
                "step": state.global_step,
                "loss": logs["loss"],
                "learning_rate": logs.get("learning_rate"),
                "seconds": round(self.seconds, 4),
                "tokens_per_s_per_device": round(per_device, 1),
                "mfu": round(6 * n_params * per_device / peak_flops, 4) if peak_flops else None,
            }
            with open(path, "a") as f:
                f.write(json.dumps(row) + "\n")

    return Throughput()


def attention_kernel(config, attn: str, dtype, device) -> str:
    """The kernel the model's attention runs. For `sdpa`: the backend PyTorch's SDPA dispatcher picks
    (torch._fused_sdp_choice, what scaled_dot_product_attention itself calls) for the model's head
    size, dtype and device with a causal mask and no padding mask, as for A.3's packed sequences;
    FLASH_ATTENTION is the FlashAttention-2 kernel."""
    if attn != "sdpa":
        return attn
    import torch
    from torch.nn.attention import SDPBackend

    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    q = torch.zeros(1, config.num_attention_heads, 64, head_dim, dtype=dtype, device=device)
    return f"sdpa:{SDPBackend(torch._fused_sdp_choice(q, q, q, None, 0.0, True)).name}"


def precision_summary(policy) -> dict | None:
    """FSDP's MixedPrecision as dtype names (None without FSDP)."""
    if policy is None:
        return None
    return {k: str(getattr(policy, k)).removeprefix("torch.") for k in ("param_dtype", "reduce_dtype", "buffer_dtype")}


def train(
    packed_dir, base_model, out_dir, work_dir, settings: CptSettings, seed: int, max_steps: int | None = None
) -> dict:
    """Train; `max_steps` stops early (the scaling measurements of Figure 5), None: the epochs decide."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, TrainingArguments, set_seed

    extra_callbacks = load_callbacks(settings.callbacks)  # a bad path fails before the model loads
    set_seed(seed)
    gpu = torch.cuda.is_available()
    fsdp = fsdp_launch()
    # bf16 mixed precision (4.2) on GPU and under FSDP on any device (the paper's precision policy);
    # plain fp32 for a CPU run without FSDP
    bf16 = gpu or fsdp is not None
    compute_dtype = torch.bfloat16 if bf16 else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    attn = settings.attention if gpu else "sdpa"
    if settings.document_masking and attn != "flash_attention_2":
        raise ValueError("cpt.document_masking needs attention: flash_attention_2 (GPU)")
    data = PackedDataset(packed_dir, settings.document_masking, tokenizer.eos_token_id)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    micro = settings.micro_batch_size
    accumulation = max(1, settings.effective_batch_sequences // (micro * world))
    request = {
        "packed": json.loads((Path(packed_dir) / "stats.json").read_text()),
        "packed_lengths": sha256_file(Path(packed_dir) / "lengths.u32"),
        "base": json.loads((Path(base_model) / "definemed-source.json").read_text()),
        "settings": settings.weight_settings(),
        **({"max_steps": max_steps} if max_steps else {}),  # the schedule decays over max_steps
        "seed": seed,
        "world_size": world,
        "fsdp": fsdp,  # checkpoints of another sharding or state-dict type do not load
    }
    # checkpoints of other data or settings are dropped; rank 0 decides, the other ranks wait for it
    if rank == 0:
        claim_work_dir(work_dir, request)
    else:
        wait_for_claim(work_dir, request)
    args = TrainingArguments(
        output_dir=str(work_dir),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation,
        num_train_epochs=settings.epochs,
        max_steps=max_steps or -1,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        adam_beta1=settings.adam_beta1,
        adam_beta2=settings.adam_beta2,
        lr_scheduler_type="linear",
        warmup_steps=settings.warmup_steps,
        optim="adamw_torch_fused" if gpu else "adamw_torch",
        bf16=bf16,
        # without it transformers ignores torchrun's process group on CPU and every process trains
        # alone; with it several CPU processes train data-parallel over gloo (scaling benchmark)
        use_cpu=not gpu,
        **memory_arguments(settings, fsdp),
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=CHECKPOINTS_KEPT,
        logging_steps=1,
        seed=seed,
        data_seed=seed,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    # the process group first (TrainingArguments._setup_devices), then the model: under FSDP with
    # fsdp_cpu_ram_efficient_loading only rank 0 holds the base's weights in CPU memory
    log.info("process %d of %d on %s", rank, world, args.device)
    model = load_base_model(base_model, compute_dtype, attn, weights=not (rank0_loads_only() and rank != 0))
    steps = math.ceil(len(data) / (micro * world * accumulation)) * settings.epochs
    if max_steps:
        steps = min(steps, max_steps)
    n_params = sum(p.numel() for p in model.parameters())
    tokens_per_step = micro * world * accumulation * data.tokens.shape[1]
    peak = settings.peak_tflops_per_device
    time_limit = save_before_time_limit_callback(slurm_deadline(settings))
    rotary = rotary_dtype_callback()
    trainer = cpt_trainer_class(settings.reduce_dtype)(
        model=model,
        args=args,
        train_dataset=data,
        callbacks=[
            throughput_callback(
                Path(work_dir) / THROUGHPUT_FILE, tokens_per_step, n_params, peak * 1e12 if peak else None, world
            ),
            time_limit,
            rotary,
            *(cls() for cls in extra_callbacks),
        ],
    )
    resume = last_complete_checkpoint(work_dir, world)
    if resume:
        log.info("resuming from %s", resume)
    if rank == 0:
        record_attempt(work_dir, resume)
    trainer.train(resume_from_checkpoint=resume)
    if time_limit.stopped_at is not None and trainer.state.global_step < trainer.state.max_steps:
        raise StoppedForTimeLimit(
            f"checkpoint-{time_limit.stopped_at} written in {work_dir} before the time limit; rerun to resume"
        )
    # the dtype of the base's weights (bfloat16 for the paper's models): what the benchmarks load
    # and the merge reads, whatever precision the optimizer kept
    dtype = AutoConfig.from_pretrained(base_model).dtype or torch.float32
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    save_final_model(trainer.model_wrapped, unwrapped, out_dir, dtype, trainer.is_world_process_zero())
    if trainer.is_world_process_zero():  # one writer: every rank shares out_dir on a shared file system
        tokenizer.save_pretrained(str(out_dir))  # the base's tokenizer and chat template
        drop_load_flags(out_dir)
    plugin = getattr(trainer.accelerator.state, "fsdp_plugin", None)
    policy = getattr(plugin, "mixed_precision_policy", None)
    return {
        "steps": trainer.state.global_step,
        "planned_steps": steps,
        "sequences": len(data),
        "tokens_per_step": tokens_per_step,
        "tokens_seen": tokens_per_step * trainer.state.global_step,
        "gradient_accumulation_steps": accumulation,
        "world_size": world,
        "parameters": n_params,
        "device": torch.cuda.get_device_name() if gpu else "cpu",
        "attention": attn,
        # the kernel of the compute dtype (bf16 under mixed precision), not of the fp32 master weights
        "attention_kernel": attention_kernel(model.config, attn, compute_dtype, "cuda" if gpu else "cpu"),
        "compute_dtype": str(compute_dtype).removeprefix("torch."),
        "fsdp_mixed_precision": precision_summary(policy),
        # the rotary buffers' dtypes after each optimizer step (FSDP casts buffers at the first forward)
        "rotary_buffer_dtypes": rotary.summary(),
        "fsdp": fsdp,
        "dtype": str(dtype).removeprefix("torch."),
    }


def record_attempt(work_dir, resume: str | None) -> None:
    """Append one line per start of a run to <work_dir>/history.jsonl: when, and from which checkpoint
    (null: from the base). The history of one run's attempts is not a result: the summary, the
    model and its card are the same bytes whether the job ran through or was killed and resumed."""
    import datetime

    row = {"time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "resumed_from": resume}
    with open(Path(work_dir) / HISTORY_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def heldout_nll(model_dir, texts: list[str], max_length: int) -> dict:
    """Mean token negative log-likelihood and perplexity of `texts` (each cut to max_length), and
    each document's mean token NLL."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    if torch.cuda.is_available():
        # the paper's models in bf16 as trained (A.3); a 24B model (47 GB) overflows one 40 GB card,
        # so accelerate places what does not fit on the CPU; transformers' loss upcasts logits to fp32
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, device_map="auto").eval()
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    total, count, per_document = 0.0, 0, []
    with torch.inference_mode():
        for text in texts:
            ids = tok(text, add_special_tokens=False, truncation=True, max_length=max_length, return_tensors="pt")
            ids = ids.to(model.device)
            if ids["input_ids"].shape[1] < 2:
                per_document.append(None)
                continue
            out = model(**ids, labels=ids["input_ids"])
            n = ids["input_ids"].shape[1] - 1
            total += out.loss.item() * n
            count += n
            per_document.append(round(out.loss.item(), 6))
    nll = total / count
    # per document (mean token NLL, None for a document too short to score): the noise of a change
    return {"tokens": count, "nll": nll, "perplexity": math.exp(nll), "document_nll": per_document}
