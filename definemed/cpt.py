"""Continual pre-training on packed sequences (paper 4.2, A.3) with transformers' Trainer.

AdamW, linear decay after a warm-up, two epochs, bf16 and activation checkpointing on GPU,
FlashAttention-2 on GPU and SDPA on CPU; FSDP comes from the accelerate config the job is launched
with. Checkpoints live in a work folder outside the rule's outputs: a job killed at its time limit
continues from its last complete checkpoint, with data order and RNG state, when it is rerun.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np

from definemed.io import claim_work_dir, drop_load_flags, sha256_file
from definemed.packing import open_packed

log = logging.getLogger(__name__)


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


def last_complete_checkpoint(work_dir) -> str | None:
    """The newest checkpoint that was written to the end (a kill while saving leaves a partial one)."""
    needed = ("trainer_state.json", "optimizer.pt", "scheduler.pt")
    done = [
        c
        for c in Path(work_dir).glob("checkpoint-*")
        if all((c / f).exists() for f in needed) and any(c.glob("rng_state*.pth"))
    ]
    return str(max(done, key=lambda c: int(c.name.split("-")[1]))) if done else None


def wait_for_claim(work_dir, request: dict, timeout: float = 600) -> None:
    stamp = Path(work_dir) / "request.json"
    text = json.dumps(request, sort_keys=True, indent=1)
    deadline = time.time() + timeout
    while not (stamp.exists() and stamp.read_text() == text):
        if time.time() > deadline:
            raise TimeoutError(f"{stamp}: rank 0 did not prepare the work folder")
        time.sleep(1)


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


def train(packed_dir, base_model, out_dir, work_dir, settings: dict, seed: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, set_seed

    set_seed(seed)
    gpu = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    attn = settings["attention"] if gpu else "sdpa"
    if settings["document_masking"] and attn != "flash_attention_2":
        raise ValueError("cpt.document_masking needs attention: flash_attention_2 (GPU)")
    model = AutoModelForCausalLM.from_pretrained(
        base_model, dtype=torch.bfloat16 if gpu else torch.float32, attn_implementation=attn
    )
    data = PackedDataset(packed_dir, settings["document_masking"], tokenizer.eos_token_id)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    micro = settings["micro_batch_size"]
    accumulation = max(1, settings["effective_batch_sequences"] // (micro * world))
    request = {
        "packed": json.loads((Path(packed_dir) / "stats.json").read_text()),
        "packed_lengths": sha256_file(Path(packed_dir) / "lengths.u32"),
        "base": json.loads((Path(base_model) / "definemed-source.json").read_text()),
        "settings": {k: v for k, v in settings.items() if k not in ("resources", "launcher", "runs")},
        "seed": seed,
        "world_size": world,
    }
    # checkpoints of other data or settings are dropped; rank 0 decides, the other ranks wait for it
    if int(os.environ.get("RANK", "0")) == 0:
        claim_work_dir(work_dir, request)
    else:
        wait_for_claim(work_dir, request)
    args = TrainingArguments(
        output_dir=str(work_dir),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation,
        num_train_epochs=settings["epochs"],
        max_steps=settings.get("max_steps") or -1,  # scaling benchmarks (paper Figure 5) stop early
        learning_rate=settings["learning_rate"],
        weight_decay=settings["weight_decay"],
        adam_beta1=settings["adam_beta1"],
        adam_beta2=settings["adam_beta2"],
        lr_scheduler_type="linear",
        warmup_steps=settings["warmup_steps"],
        optim="adamw_torch_fused" if gpu else "adamw_torch",
        bf16=gpu,
        # without it transformers ignores torchrun's process group on CPU and every process trains
        # alone; with it several CPU processes train data-parallel over gloo (scaling benchmark)
        use_cpu=not gpu,
        gradient_checkpointing=settings["gradient_checkpointing"],
        save_strategy="steps",
        save_steps=settings["save_steps"],
        save_total_limit=2,
        logging_steps=1,
        seed=seed,
        data_seed=seed,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    steps = math.ceil(len(data) / (micro * world * accumulation)) * settings["epochs"]
    if settings.get("max_steps"):
        steps = min(steps, settings["max_steps"])
    n_params = sum(p.numel() for p in model.parameters())
    tokens_per_step = micro * world * accumulation * data.tokens.shape[1]
    peak = settings.get("peak_tflops_per_device")
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        callbacks=[
            throughput_callback(
                Path(work_dir) / "throughput.jsonl", tokens_per_step, n_params, peak * 1e12 if peak else None, world
            )
        ],
    )
    resume = last_complete_checkpoint(work_dir)
    if resume:
        log.info("resuming from %s", resume)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(out_dir))  # collective (FSDP gathers the weights); the main process writes
    if trainer.is_world_process_zero():  # one writer: every rank shares out_dir on a shared file system
        tokenizer.save_pretrained(str(out_dir))  # the base's tokenizer and chat template
        drop_load_flags(out_dir)
        if model.generation_config is not None:
            model.generation_config.save_pretrained(str(out_dir))
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
        "resumed_from": resume,
    }


def heldout_nll(model_dir, texts: list[str], max_length: int) -> dict:
    """Mean token negative log-likelihood and perplexity of `texts` (each cut to max_length)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for text in texts:
            ids = tok(text, add_special_tokens=False, truncation=True, max_length=max_length, return_tensors="pt")
            if ids["input_ids"].shape[1] < 2:
                continue
            out = model(**ids, labels=ids["input_ids"])
            n = ids["input_ids"].shape[1] - 1
            total += out.loss.item() * n
            count += n
    nll = total / count
    return {"tokens": count, "nll": nll, "perplexity": math.exp(nll)}
