"""Statistics of the judges' verdicts: pairwise win rates with Wilson intervals (paper 5.2,
Figure 2), the judge's position bias, and failure-mode counts (5.3, Figure 3, Table 10).

Win rate of row model R against column model C (Figure 2):
    win_rate = wins_R / n,  n = valid verdicts between R and C (wins + losses + ties),
so that R's and C's rates against each other add up to 1 - tie share, as the paper reports pairs
("wins ... by a rate of x versus y"). The 95% interval is Wilson's score interval for wins / n.
"""

from __future__ import annotations

import math

from definemed.judges.prompts import MODE_NAMES


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float | None, float | None]:
    """Wilson score interval of a binomial proportion k/n (95% by default)."""
    if n == 0:
        return None, None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


WIN_RATE_DEFINITION = (
    "win_rate = wins / n for the row model against the column model, n = valid verdicts of the pair "
    "(wins + losses + ties; failed or schema-invalid verdicts are counted under 'invalid' and left out), "
    "pooled over both presentation orders when both are judged; ci_low/ci_high: 95% Wilson score interval "
    "of wins / n; tie_rate = ties / n."
)


def winrate_matrix(verdicts: list[dict], models: list[str]) -> dict:
    cells = {r: {c: {"wins": 0, "losses": 0, "ties": 0, "invalid": 0} for c in models if c != r} for r in models}
    for v in verdicts:
        first, second = v["pair"]
        for row, col in ((first, second), (second, first)):
            cell = cells[row][col]
            if v["status"] != "valid":
                cell["invalid"] += 1
            elif v["winner"] == "tie":
                cell["ties"] += 1
            elif v["winner"] == row:
                cell["wins"] += 1
            else:
                cell["losses"] += 1
    for row in cells.values():
        for cell in row.values():
            n = cell["wins"] + cell["losses"] + cell["ties"]
            lo, hi = wilson(cell["wins"], n)
            cell.update(
                n=n,
                win_rate=cell["wins"] / n if n else None,
                tie_rate=cell["ties"] / n if n else None,
                ci_low=lo,
                ci_high=hi,
            )
    return cells


def position_bias(verdicts: list[dict]) -> dict:
    """How often the judge picks the first-presented response, among valid non-tie verdicts."""
    valid = [v for v in verdicts if v["status"] == "valid" and v["winner_label"] in ("A", "B")]
    k = sum(v["winner_label"] == "A" for v in valid)
    lo, hi = wilson(k, len(valid))
    return {"first_position_wins": k, "decisive": len(valid), "share": k / len(valid) if valid else None,
            "ci_low": lo, "ci_high": hi}  # fmt: skip


def failure_mode_counts(rows_by_model: dict[str, list[dict]], models: list[str], display: dict) -> dict:
    out = {}
    for m in models:
        rows = rows_by_model.get(m, [])
        valid = [r for r in rows if r["status"] == "valid"]
        counts = {mode: sum(r["modes"][mode] for r in valid) for mode in MODE_NAMES}
        out[m] = {
            "display": display[m],
            "responses": len(rows),
            "judged": len(valid),
            "invalid": len(rows) - len(valid),
            "counts": counts,
            "shares": {mode: (c / len(valid) if valid else None) for mode, c in counts.items()},
        }
    return out
