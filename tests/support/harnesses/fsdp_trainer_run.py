"""scripts/train_cpt.py under FSDP1 on CPU over gloo, as `accelerate launch --config_file
accelerate/<file>.yaml` runs it on GPUs (tests/training/test_cpt_fsdp_trainer.py launches it):

    accelerate launch --config_file accelerate/fsdp_full_shard.yaml --num_machines 1 --num_processes 2 \
        tests/support/harnesses/fsdp_trainer_run.py <scripts/train_cpt.py arguments>

Test-only switches, each because accelerate or torch ties a step to an accelerator device, none of
which changes what the Trainer, accelerate's FSDP wrapping or checkpointing do:

- accelerate's AcceleratorState selects FSDP only for GPU-like devices (state.py): after it is
  created on CPU (MULTI_CPU), its distributed type is switched to FSDP and the FSDP plugin that
  accelerate built from the launch's environment is handed to it, with the mixed precision the
  state's FSDP branch would set (`fsdp_plugin.set_mixed_precision`);
- the plugin's param_init_fn for sync_module_states (cpu_ram_efficient_loading) materialises on
  the accelerator's current device (utils/dataclasses.py): here on the CPU;
- FSDP1's sync_module_states refuses CPU tensors because NCCL broadcasts GPU memory
  (_init_utils.py _check_module_states_for_sync_module_states): gloo broadcasts CPU tensors;
- HYBRID_SHARD takes the node's size from the device count (_init_utils.py
  _init_process_group_state_for_hybrid_shard): here the launch's LOCAL_WORLD_SIZE.

DEFINEMED_TEST_FSDP_RECORD=<file>: each rank appends JSON rows: whether it loaded the base's weights
or only its shape (meta), and how FSDP wrapped the model (strategy, shard and replicate group sizes,
local and full parameter counts, a checksum of the full parameters after sync_module_states).
"""

import json
import os
import runpy
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests" / "support" / "harnesses"))  # cpt.callbacks of the tests (stall_callback)

import torch  # noqa: E402
import torch.distributed.fsdp._init_utils as fsdp_init  # noqa: E402
from accelerate.state import AcceleratorState  # noqa: E402
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin  # noqa: E402

from accelerate import Accelerator  # noqa: E402

plugins = []
post_init = FullyShardedDataParallelPlugin.__post_init__


def cpu_post_init(self):
    # accelerate's __post_init__ asks an accelerator for the device of param_init_fn when
    # sync_module_states is set: read the launch's setting, let it run without, then restore it
    sync = os.environ.get("FSDP_SYNC_MODULE_STATES", "false").lower() == "true"
    efficient = os.environ.get("FSDP_CPU_RAM_EFFICIENT_LOADING", "false").lower() == "true"
    saved = {k: os.environ.get(k) for k in ("FSDP_SYNC_MODULE_STATES", "FSDP_CPU_RAM_EFFICIENT_LOADING")}
    os.environ.update(FSDP_SYNC_MODULE_STATES="false", FSDP_CPU_RAM_EFFICIENT_LOADING="false")
    try:
        post_init(self)
    finally:
        for k, v in saved.items():
            if v is not None:
                os.environ[k] = v
    self.cpu_ram_efficient_loading = efficient
    self.sync_module_states = sync or efficient
    if self.sync_module_states:
        self.param_init_fn = lambda module: module.to_empty(device=torch.device("cpu"), recurse=False)
    plugins.append(self)


FullyShardedDataParallelPlugin.__post_init__ = cpu_post_init
accelerator_init = Accelerator.__init__
state_init = AcceleratorState.__init__
switched = []


def fsdp_on_cpu(self, *args, **kwargs):
    accelerator_init(self, *args, **kwargs)
    if plugins and self.state.distributed_type == DistributedType.MULTI_CPU:
        plugin = plugins[-1]
        if self.state.mixed_precision != "no":
            plugin.set_mixed_precision(self.state.mixed_precision)
        switched.append(plugin)
        switch(self.state)


def switch(state):
    state.distributed_type = DistributedType.FSDP
    state.fsdp_plugin = switched[-1]
    # FSDP's compute device of CPU parameters is the device handle's current device, "cpu": the
    # device_id accelerate passes (its device) must equal it, not transformers' "cpu:<rank>"
    state.device = torch.device("cpu")


def state_keeps_fsdp(self, *args, **kwargs):
    # every AcceleratorState() copies PartialState's fields (distributed_type MULTI_CPU) again
    state_init(self, *args, **kwargs)
    if switched:
        switch(self)


Accelerator.__init__ = fsdp_on_cpu
AcceleratorState.__init__ = state_keeps_fsdp
fsdp_init._check_module_states_for_sync_module_states = lambda states: None
torch.cpu.device_count = lambda: int(os.environ["LOCAL_WORLD_SIZE"])

record_file = os.environ.get("DEFINEMED_TEST_FSDP_RECORD")


def record(row: dict) -> None:
    with open(record_file, "a") as f:
        f.write(json.dumps({"rank": int(os.environ["RANK"]), **row}) + "\n")


if record_file:  # what each rank loaded and how FSDP sharded it
    prepare_model = Accelerator.prepare_model

    def recorded_prepare_model(self, model, *args, **kwargs):
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        # the model as train() loaded it: weights, or only its shape on the meta device
        meta = all(p.device.type == "meta" for p in model.parameters())
        model = prepare_model(self, model, *args, **kwargs)
        if isinstance(model, FSDP):
            inter = getattr(model, "_inter_node_pg", None)
            local = sum(p.numel() for p in model.parameters())
            with FSDP.summon_full_params(model):  # the weights every rank trains from (after sync_module_states)
                checksum = sum(p.detach().double().abs().sum().item() for p in model.parameters())
                total = sum(p.numel() for p in model.parameters())
            record(
                {
                    "loaded_meta": meta,
                    "event": "wrap",
                    "strategy": model.sharding_strategy.name,
                    "shard_group": model.process_group.size(),
                    "replicate_group": inter.size() if inter is not None else 1,
                    "local_numel": local,
                    "total_numel": total,
                    "checksum": checksum,
                    # non-persistent buffers (the rotary inv_freq) come from rank 0 as well
                    "buffers": {n: b.double().sum().item() for n, b in model.named_buffers()},
                    "sync_each_batch": self.gradient_state.plugin_kwargs.get("sync_each_batch"),
                    "checkpointed_layers": sum(type(m).__name__ == "CheckpointWrapper" for m in model.modules()),
                }
            )
        return model

    Accelerator.prepare_model = recorded_prepare_model

sys.argv = [str(REPO / "scripts" / "train_cpt.py"), *sys.argv[1:]]
runpy.run_path(sys.argv[0], run_name="__main__")
