"""Training throughput against node count (paper A.3, Figure 5): the numbers of one scaling
measurement, from the per-step log that definemed.training.cpt writes."""

from __future__ import annotations


def throughput(rows: list[dict], tokens_per_step: int, world_size: int, warmup_steps: int) -> dict:
    """Mean throughput over the logged optimizer steps after the first `warmup_steps`.

    `rows` are the per-step records of definemed.training.cpt's throughput log ({"step", "seconds", ...});
    tokens/s is the tokens of all processes over the summed step time, per device that divided by
    the world size."""
    rows = sorted(rows, key=lambda r: r["step"])
    measured = [r for r in rows if r["step"] > warmup_steps]
    if not measured:
        raise ValueError(f"no steps after the {warmup_steps} warm-up steps (logged: {len(rows)})")
    seconds = sum(r["seconds"] for r in measured)
    total = tokens_per_step * len(measured) / seconds
    return {
        "steps": len(rows),
        "warmup_steps": warmup_steps,
        "measured_steps": len(measured),
        "step_seconds": [r["seconds"] for r in measured],
        "tokens_per_s": total,
        "tokens_per_s_per_device": total / world_size,
    }
