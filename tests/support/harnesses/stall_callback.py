"""A TrainerCallback for tests/workflow/test_slurm.py, set by tests/support/overlays/slurm_overlay.yaml
(cpt.callbacks).

The first attempt of the CPT job (Snakemake's `attempt` 1) stalls for good, on every rank, once its
first checkpoint is complete on disk for all ranks, and then cuts its own Slurm time limit to the
first whole minute at least 15 s past the time it has run (`scontrol update`): the job can then
only end at its time limit (TIMEOUT), however fast or busy the machine is. The first attempt's
window to reach that first checkpoint is its whole (generous) `runtime`, so a slow start on a
loaded machine does not cost the checkpoint. Any later attempt (the profile's `retries` submit a
new Slurm job: Slurm's own restart count stays 0) trains to the end, resumed from that checkpoint.

Outside Slurm (the FSDP tests) a run that starts fresh stalls and a resumed one trains on, with no
time limit to cut. Snakemake's attempt reaches the job as its time limit: the overlay gives attempt 1 `runtime` and
later attempts `retry_runtime` (rules/helpers/cpt.smk cpt_job_resources), two different values, and
the callback reads the job's TimeLimit back from Slurm. Each stalled process writes its pid to
<output_dir>/stalled-<rank>.pid, so the test can check that Slurm ended it.
"""

import math
import os
import re
import subprocess
import time
from pathlib import Path

import yaml
from transformers import TrainerCallback

from definemed.checkpoints import checkpoint_problem

OVERLAY = Path(__file__).resolve().parents[1] / "overlays" / "slurm_overlay.yaml"


def slurm_job() -> dict[str, str]:
    """`scontrol show job -o` of this process's Slurm job as key -> value."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", os.environ["SLURM_JOB_ID"]], capture_output=True, text=True, check=True
    ).stdout
    return dict(re.findall(r"(\S+?)=(\S*)", out))


def minutes(duration: str) -> float:
    """A Slurm duration ([D-]HH:MM:SS, MM:SS) in minutes."""
    days, _, clock = duration.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    h, m, s = parts
    return (int(days or 0) * 24 + h) * 60 + m + s / 60


def first_attempt() -> bool:
    """Whether this Slurm job is Snakemake's attempt 1 of the CPT job: its time limit is the
    overlay's `runtime` (attempts after the first get `retry_runtime`)."""
    resources = yaml.safe_load(OVERLAY.read_text())["cpt"]["resources"]
    assert resources["runtime"] != resources["retry_runtime"], "the attempts must differ in runtime"
    return round(minutes(slurm_job()["TimeLimit"])) == resources["runtime"]


def stall_forever():
    while True:
        time.sleep(60)


class StallAfterFirstCheckpoint(TrainerCallback):
    def __init__(self):
        self.first = None

    def on_train_begin(self, args, state, control, **kwargs):
        # outside a Slurm job (tests/training/test_cpt_fsdp_trainer.py) a fresh run is the first attempt and
        # a resumed run a later one
        self.first = first_attempt() if "SLURM_JOB_ID" in os.environ else state.global_step == 0

    def on_save(self, args, state, control, **kwargs):
        if not self.first:
            return
        # on_save follows this rank's own part of the save (trainer.py _maybe_log_save_evaluate),
        # with no barrier after it: rank 0 writes trainer_state.json last, other ranks their RNG file
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        while checkpoint_problem(checkpoint, args.world_size) is not None:
            time.sleep(0.2)
        (Path(args.output_dir) / f"stalled-{args.process_index}.pid").write_text(f"{os.getpid()}\n")
        if args.process_index == 0 and "SLURM_JOB_ID" in os.environ:  # Slurm ends the job soon after
            job = slurm_job()
            # whole minutes, at least 15 s from now (the other rank's pid file is written by then)
            limit = math.ceil(minutes(job["RunTime"]) + 0.25)
            subprocess.run(
                ["scontrol", "update", f"JobId={os.environ['SLURM_JOB_ID']}", f"TimeLimit={limit}"], check=True
            )
        stall_forever()
