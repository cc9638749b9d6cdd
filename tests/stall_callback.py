"""A TrainerCallback for tests/test_slurm.py, set by tests/slurm_overlay.yaml (cpt.callbacks).

A CPT that starts without a checkpoint stalls for good, on every rank, once its first checkpoint
is complete on disk for all ranks: the Slurm job can then only end at its time limit (TIMEOUT),
however fast the machine trains. A CPT resumed from a checkpoint trains to the end. Each stalled
process writes its pid to <output_dir>/stalled-<rank>.pid, so the test can check that Slurm
ended it.
"""

import os
import time
from pathlib import Path

from transformers import TrainerCallback

from definemed.cpt import checkpoint_problem


def stall_forever():
    while True:
        time.sleep(60)


class StallAfterFirstCheckpoint(TrainerCallback):
    def __init__(self):
        self.resumed = None

    def on_train_begin(self, args, state, control, **kwargs):
        # trainer.py _init_training_state loads a resumed checkpoint's trainer_state.json before
        # on_train_begin: global_step is the checkpoint's step, 0 in a fresh run
        self.resumed = state.global_step > 0

    def on_save(self, args, state, control, **kwargs):
        if self.resumed:
            return
        # on_save follows this rank's own part of the save (trainer.py _maybe_log_save_evaluate),
        # with no barrier after it: rank 0 writes trainer_state.json last, other ranks their RNG file
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        while checkpoint_problem(checkpoint, args.world_size) is not None:
            time.sleep(0.2)
        (Path(args.output_dir) / f"stalled-{args.process_index}.pid").write_text(f"{os.getpid()}\n")
        stall_forever()
