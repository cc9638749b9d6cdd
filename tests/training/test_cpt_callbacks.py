"""cpt.callbacks (TrainerCallback classes by import path) and the Slurm test's stall callback."""

import json
from types import SimpleNamespace

import pytest
from conftest import REPO, cpt_job_settings

SETTINGS_WITH = {"callbacks": ["tests.support.harnesses.stall_callback:StallAfterFirstCheckpoint"]}


def test_callbacks_load_by_import_path():
    from definemed.training.cpt import load_callbacks
    from tests.support.harnesses.stall_callback import StallAfterFirstCheckpoint

    assert load_callbacks([]) == []
    assert load_callbacks(SETTINGS_WITH["callbacks"]) == [StallAfterFirstCheckpoint]


@pytest.mark.parametrize(
    "path, why",
    [
        ("tests.no_such_module:Callback", "does not import: No module named 'tests.no_such_module'"),
        ("tests.support.harnesses.stall_callback:NoSuchClass", "does not import"),
        ("definemed.training.cpt:PackedDataset", "is not a transformers TrainerCallback class"),
        ("tests.support.harnesses.stall_callback", "is not a 'module:Class' import path"),
    ],
)
def test_a_callback_that_does_not_load_names_the_key_and_the_path(path, why):
    from definemed.training.cpt import load_callbacks

    with pytest.raises(ValueError) as e:
        load_callbacks([path])
    assert str(e.value).startswith(f"cpt.callbacks: {path!r}") and why in str(e.value), e.value


def test_training_refuses_a_bad_callback_before_it_loads_anything(tmp_path):
    from definemed.training.cpt import CptSettings, train

    settings = CptSettings.from_config(cpt_job_settings(callbacks=["nope:Nope"]))
    with pytest.raises(ValueError, match="cpt.callbacks: 'nope:Nope'"):
        inputs = [tmp_path / name for name in ("packed", "base", "out", "work")]
        train(*inputs, settings, seed=1)


def test_the_schema_checks_the_form_and_defaults_to_none():
    import jsonschema
    import yaml

    from definemed.config import validated

    config = yaml.safe_load((REPO / "config" / "miniature.yaml").read_text())
    assert validated(config)["cpt"]["callbacks"] == []
    config["cpt"]["callbacks"] = ["tests/support/harnesses/stall_callback.py"]
    with pytest.raises(jsonschema.ValidationError, match="tests/support/harnesses/stall_callback.py"):
        validated(config)


def checkpoint(work, step, ranks, rng_files=None):
    """The files checkpoint_problem wants of a complete non-FSDP checkpoint of `ranks` processes."""
    c = work / f"checkpoint-{step}"
    c.mkdir(parents=True)
    (c / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt"):
        (c / name).write_bytes(b"")
    for rank in range(ranks) if rng_files is None else rng_files:
        (c / f"rng_state_{rank}.pth").write_bytes(b"")
    return c


class Stalled(Exception):
    pass


@pytest.fixture
def stall(monkeypatch):
    """The stall callback with its endless wait replaced by an exception, and its args/state."""
    import tests.support.harnesses.stall_callback as module

    def stall_forever():
        raise Stalled

    monkeypatch.setattr(module, "stall_forever", stall_forever)
    # outside a Slurm job: the attempt comes from the test (run's `start_step`: 0 is attempt 1, a
    # resumed run a later attempt), rank 0's time-limit cut is recorded instead of sent to scontrol
    monkeypatch.setattr(module, "slurm_job", lambda: {"RunTime": "00:01:30", "TimeLimit": "00:10:00"})
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    module.updates = []
    monkeypatch.setattr(module.subprocess, "run", lambda cmd, **kw: module.updates.append(cmd))
    return module


def run(callback, work, start_step, save_step, rank=0):
    import tests.support.harnesses.stall_callback as module

    args = SimpleNamespace(output_dir=str(work), world_size=2, process_index=rank)
    first_attempt = module.first_attempt
    module.first_attempt = lambda: start_step == 0
    try:
        callback.on_train_begin(args, SimpleNamespace(global_step=start_step), None)
    finally:
        module.first_attempt = first_attempt
    return callback.on_save(args, SimpleNamespace(global_step=save_step), None)


def test_a_fresh_run_stalls_after_its_first_complete_checkpoint(stall, tmp_path):
    checkpoint(tmp_path, 5, ranks=2)
    with pytest.raises(Stalled):
        run(stall.StallAfterFirstCheckpoint(), tmp_path, start_step=0, save_step=5, rank=1)
    assert int((tmp_path / "stalled-1.pid").read_text()) > 0


def test_a_resumed_run_trains_on(stall, tmp_path):
    checkpoint(tmp_path, 5, ranks=2)
    checkpoint(tmp_path, 10, ranks=2)
    assert run(stall.StallAfterFirstCheckpoint(), tmp_path, start_step=5, save_step=10) is None
    assert not list(tmp_path.glob("stalled-*"))


def test_a_fresh_run_waits_for_the_other_ranks_part_of_the_checkpoint(stall, tmp_path, monkeypatch):
    c = checkpoint(tmp_path, 5, ranks=2, rng_files=[0])  # rank 1 has not written its RNG state yet
    waits = []

    def sleep(seconds):  # the other rank finishes its save while this one waits
        waits.append(seconds)
        assert not (tmp_path / "stalled-0.pid").exists()
        (c / "rng_state_1.pth").write_bytes(b"")

    monkeypatch.setattr(stall.time, "sleep", sleep)
    with pytest.raises(Stalled):
        run(stall.StallAfterFirstCheckpoint(), tmp_path, start_step=0, save_step=5)
    assert len(waits) == 1 and (tmp_path / "stalled-0.pid").exists()
    # rank 0 cut its job's time limit to the first whole minute at least 15 s past its run time
    # (1:30 -> 2 minutes; 1:50 would give 3)
    assert stall.updates == [["scontrol", "update", "JobId=7", "TimeLimit=2"]]


def test_a_changed_callback_keeps_the_checkpoints_a_changed_hyperparameter_drops_them(miniature_config, tmp_path):
    """Adding a tracker (or renaming the site, changing the time-limit margin) to a running CPT keeps
    its checkpoints for the rerun; a setting that shapes the weights starts the run over."""
    from definemed.io import claim_work_dir
    from definemed.training.cpt import CptSettings

    cpt = cpt_job_settings(miniature_config)
    work = tmp_path / "work"

    def claim(settings):
        return claim_work_dir(work, {"settings": CptSettings.from_config(settings).weight_settings(), "seed": 0})

    assert claim(cpt) is False
    (work / "checkpoint-5").mkdir()
    kept = dict(
        cpt,
        callbacks=SETTINGS_WITH["callbacks"],
        cluster="another site",
        save_before_time_limit_minutes=cpt["save_before_time_limit_minutes"] + 5,
        peak_tflops_per_device=312,
        launcher="accelerate launch",
    )
    assert claim(kept) is True and (work / "checkpoint-5").is_dir()
    for key, value in (("learning_rate", cpt["learning_rate"] * 2), ("epochs", cpt["epochs"] + 1)):
        (work / "checkpoint-5").mkdir(exist_ok=True)
        assert claim(dict(kept, **{key: value})) is False, key
        assert not (work / "checkpoint-5").exists(), key
        claim(kept)  # back to the run's own settings


def test_outside_slurm_a_fresh_run_stalls_and_a_resumed_run_trains_on(stall, tmp_path, monkeypatch):
    """The FSDP tests use the callback outside Slurm: the run's start step tells the attempt there,
    and no time limit is cut."""
    monkeypatch.delenv("SLURM_JOB_ID")
    checkpoint(tmp_path, 5, ranks=2)
    args = SimpleNamespace(output_dir=str(tmp_path), world_size=2, process_index=0)
    resumed = stall.StallAfterFirstCheckpoint()
    resumed.on_train_begin(args, SimpleNamespace(global_step=5), None)
    assert resumed.on_save(args, SimpleNamespace(global_step=10), None) is None
    fresh = stall.StallAfterFirstCheckpoint()
    fresh.on_train_begin(args, SimpleNamespace(global_step=0), None)
    with pytest.raises(Stalled):
        fresh.on_save(args, SimpleNamespace(global_step=5), None)
    assert stall.updates == []
