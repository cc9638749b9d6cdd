"""Trainer checkpoints in a work folder: whether one was written to the end, and the newest that
was (the classifier's and the CPT's resumes, the Slurm and chaos tests)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


# What the Trainer writes into checkpoint-<step>/ (transformers trainer.py `_save_checkpoint`, in
# this order): the model (`save_model`; under FSDP also accelerate's `save_fsdp_model`: the DCP
# folder `pytorch_model_fsdp_0/` for a sharded state dict, `pytorch_model_fsdp.bin` for a full
# one), the optimizer (`optimizer.pt`; under FSDP `save_fsdp_optimizer`: `optimizer_0/` or
# `optimizer.bin`), the scheduler, one RNG file per process and, last, from the main process,
# trainer_state.json. DCP writes a folder's `.metadata` after all ranks' shards (FileSystemWriter
# .finish on the coordinator). A kill at any point leaves a checkpoint that lacks one of these, and
# the Trainer would resume from it without complaint: it loads only the optimizer files it finds.
def checkpoint_problem(checkpoint, world_size: int = 1) -> str | None:
    """Why `checkpoint` cannot be resumed from (a partial save), or None when it is complete."""
    from accelerate.utils.constants import FSDP_MODEL_NAME
    from accelerate.utils.constants import OPTIMIZER_NAME as FSDP_OPTIMIZER_NAME
    from torch.distributed.checkpoint.filesystem import _metadata_fn as dcp_metadata
    from transformers.trainer import OPTIMIZER_NAME, OPTIMIZER_NAME_BIN, SCHEDULER_NAME, TRAINER_STATE_NAME
    from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_INDEX_NAME, WEIGHTS_NAME

    c = Path(checkpoint)

    def saved(files: tuple[str, ...], dcp_prefix: str) -> str | None:
        folders = sorted(d for d in c.glob(f"{dcp_prefix}_*") if d.is_dir())
        if folders:  # a sharded state dict: complete once DCP wrote its metadata
            partial = [d.name for d in folders if not (d / dcp_metadata).is_file()]
            return f"{', '.join(partial)} without {dcp_metadata} (a partial sharded save)" if partial else None
        return None if any((c / f).is_file() for f in files) else f"none of {', '.join(files)}, {dcp_prefix}_<n>/"

    state_file = c / TRAINER_STATE_NAME
    if not state_file.is_file():
        return f"no {TRAINER_STATE_NAME} (written last)"
    try:
        step = json.loads(state_file.read_text())["global_step"]
    except (ValueError, KeyError) as e:  # save_to_json writes in place: a kill can truncate it
        return f"{TRAINER_STATE_NAME} unreadable ({e})"
    if f"checkpoint-{step}" != c.name:
        return f"{TRAINER_STATE_NAME} is of step {step}"
    weights = (f"{FSDP_MODEL_NAME}.bin", SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_NAME, WEIGHTS_INDEX_NAME)
    problem = saved(weights, FSDP_MODEL_NAME)
    if problem:
        return f"model: {problem}"
    problem = saved((OPTIMIZER_NAME, OPTIMIZER_NAME_BIN), FSDP_OPTIMIZER_NAME)
    if problem:
        return f"optimizer: {problem}"
    if not (c / SCHEDULER_NAME).is_file():
        return f"no {SCHEDULER_NAME}"
    # trainer.py _save_rng_state: one file per process (each writes its own, unsynchronised)
    rng = ["rng_state.pth"] if world_size <= 1 else [f"rng_state_{i}.pth" for i in range(world_size)]
    missing = [f for f in rng if not (c / f).is_file()]
    return f"no {', '.join(missing)}" if missing else None


def last_complete_checkpoint(work_dir, world_size: int = 1) -> str | None:
    """The newest checkpoint that was written to the end (a kill while saving leaves a partial one)."""
    found = [c for c in Path(work_dir).glob("checkpoint-*") if c.name.split("-", 1)[1].isdigit()]
    found.sort(key=lambda c: int(c.name.split("-")[1]), reverse=True)
    for c in found:
        problem = checkpoint_problem(c, world_size)
        if problem is None:
            return str(c)
        log.warning("not resuming from %s: %s", c, problem)
    return None
