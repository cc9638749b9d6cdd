"""One CPU process of FSDP1 over gloo (tests/training/test_cpt_fsdp.py runs it as a subprocess): a tiny
Qwen2 wrapped by decoder layer as accelerate's TRANSFORMER_BASED_WRAP does, with FSDP's activation
checkpointing as accelerate applies it, two optimizer steps,
then for each state-dict type

- checkpoint-2/ written by accelerate's own writers in the Trainer's order (transformers trainer.py
  `_save_checkpoint`: save_fsdp_model, save_fsdp_optimizer, scheduler, RNG state, trainer state),
- final/ written by definemed.training.cpt.save_final_model in bfloat16,

and reference.safetensors: the full parameters as FSDP's summon_full_params gives them.

    python tests/support/harnesses/fsdp_cpu_run.py OUT_DIR

One process: FSDP1 silently makes FULL_SHARD a NO_SHARD here (torch/distributed/fsdp/_init_utils.py),
so this checks layouts and readers, not sharding. The Trainer itself runs under FSDP with 2 and 2 x 2
ranks in tests/training/test_cpt_fsdp_trainer.py (tests/support/harnesses/fsdp_trainer_run.py
switches accelerate to FSDP on CPU).
"""

import functools
import json
import os
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import torch  # noqa: E402
from accelerate.utils import (  # noqa: E402
    FullyShardedDataParallelPlugin,
    load_fsdp_model,
    load_fsdp_optimizer,
    save_fsdp_model,
    save_fsdp_optimizer,
)
from safetensors.torch import save_file  # noqa: E402
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (  # noqa: E402
    _CHECKPOINT_PREFIX as CHECKPOINT_PREFIX,
)
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (  # noqa: E402
    CheckpointImpl,
    apply_activation_checkpointing,
    checkpoint_wrapper,
)
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP  # noqa: E402
from torch.distributed.fsdp import StateDictType  # noqa: E402
from torch.distributed.fsdp._common_utils import FSDP_WRAPPED_MODULE  # noqa: E402
from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy  # noqa: E402
from transformers import Qwen2Config, Qwen2ForCausalLM, TrainerState  # noqa: E402
from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer  # noqa: E402
from transformers.trainer import SCHEDULER_NAME, TRAINER_STATE_NAME  # noqa: E402

from accelerate import PartialState  # noqa: E402
from definemed.training.cpt import init_optimizer_state, save_final_model  # noqa: E402

out = Path(sys.argv[1])
os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1")
os.environ.setdefault("MASTER_PORT", "29517")
PartialState(cpu=True)  # the gloo process group; accelerate's logging needs the state
# what accelerate's writers and readers use of the Accelerator
accelerator = types.SimpleNamespace(process_index=0, num_processes=1, is_fsdp2=False, wait_for_everyone=lambda: None)


def tiny():
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=96,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    return Qwen2ForCausalLM(config)


for kind in (StateDictType.SHARDED_STATE_DICT, StateDictType.FULL_STATE_DICT, StateDictType.LOCAL_STATE_DICT):
    model = tiny()
    wrap = functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={Qwen2DecoderLayer})
    wrapped = FSDP(model, auto_wrap_policy=wrap, device_id=torch.device("cpu"), use_orig_params=True)
    # FSDP's activation checkpointing as accelerate applies it (accelerator.py prepare_model)
    no_reentrant = functools.partial(checkpoint_wrapper, checkpoint_impl=CheckpointImpl.NO_REENTRANT)
    apply_activation_checkpointing(wrapped, checkpoint_wrapper_fn=no_reentrant, auto_wrap_policy=wrap)
    FSDP.set_state_dict_type(wrapped, kind)  # what accelerate does with fsdp_state_dict_type
    optimizer = torch.optim.AdamW(wrapped.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    for seed in (1, 2):  # two steps: the step count a resume must restore is 2
        ids = torch.randint(0, 96, (2, 16), generator=torch.Generator().manual_seed(seed))
        wrapped(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    with FSDP.summon_full_params(wrapped):
        # the names of the bare model: FSDP's wrappers of the decoder layers add a path component
        reference = {
            n.replace(f"{FSDP_WRAPPED_MODULE}.", "").replace(CHECKPOINT_PREFIX, ""): p.detach().clone()
            for n, p in model.named_parameters()
        }
    root = out / kind.name
    if kind != StateDictType.LOCAL_STATE_DICT:  # the Trainer's checkpoints use the two others
        checkpoint = root / "checkpoint-2"
        plugin = FullyShardedDataParallelPlugin(fsdp_version=1, state_dict_type=kind.name)
        save_fsdp_model(plugin, accelerator, wrapped, checkpoint)
        save_fsdp_optimizer(plugin, accelerator, optimizer, wrapped, checkpoint)
        torch.save(scheduler.state_dict(), checkpoint / SCHEDULER_NAME)
        torch.save({"cpu": torch.random.get_rng_state()}, checkpoint / "rng_state.pth")
        TrainerState(global_step=2).save_to_json(str(checkpoint / TRAINER_STATE_NAME))
        # the Trainer's resume (trainer.py _load_from_checkpoint, _load_optimizer_and_scheduler) reads
        # it back with load_fsdp_model and load_fsdp_optimizer into a freshly wrapped model
        fresh = tiny()
        fresh_wrapped = FSDP(fresh, auto_wrap_policy=wrap, device_id=torch.device("cpu"), use_orig_params=True)
        FSDP.set_state_dict_type(fresh_wrapped, kind)
        load_fsdp_model(plugin, accelerator, fresh_wrapped, checkpoint)
        for init in (False, True):  # as the Trainer loads, and as CPTTrainer does
            fresh_optimizer = torch.optim.AdamW(fresh_wrapped.parameters(), lr=1e-2)
            if init:
                init_optimizer_state(fresh_wrapped, fresh_optimizer)
            load_fsdp_optimizer(plugin, accelerator, fresh_optimizer, fresh_wrapped, checkpoint)
            moments = {str(i): s["exp_avg"] for i, s in enumerate(fresh_optimizer.state_dict()["state"].values())}
            name = "resumed_moments_initialised" if init else "resumed_moments"
            save_file(moments, str(root / f"{name}.safetensors"))
        original = {str(i): s["exp_avg"] for i, s in enumerate(optimizer.state_dict()["state"].values())}
        save_file(original, str(root / "moments.safetensors"))
        with FSDP.summon_full_params(fresh_wrapped):
            loaded = {n.replace(f"{FSDP_WRAPPED_MODULE}.", ""): p.detach().clone() for n, p in fresh.named_parameters()}
        save_file(loaded, str(root / "resumed.safetensors"))
        steps = [float(s["step"]) for s in fresh_optimizer.state_dict()["state"].values()]
        (root / "resumed_optimizer_steps.json").write_text(json.dumps(steps))
    save_final_model(wrapped, model, root / "final", torch.bfloat16, is_main=True)
    save_file(reference, str(root / "reference.safetensors"))

# the same step without FSDP: the final model of a bare module (one process, no wrapper)
model = tiny()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
for seed in (1, 2):
    ids = torch.randint(0, 96, (2, 16), generator=torch.Generator().manual_seed(seed))
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    optimizer.zero_grad()
save_final_model(model, model, out / "NO_FSDP" / "final", torch.bfloat16, is_main=True)
save_file({n: p.detach().clone() for n, p in model.named_parameters()}, str(out / "NO_FSDP" / "reference.safetensors"))
print("done")
