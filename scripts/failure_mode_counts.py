"""Per-model counts and shares of the 14 failure modes (Figure 3's data).

    python scripts/failure_mode_counts.py --inputs results/judges/failure_modes/*.jsonl \
        --models m1 m2 ... --display '{...}' --out results/judges/failure_modes/counts.json
"""

import argparse
import json

from _cli import setup_logging
from definemed.io import read_jsonl, write_json
from definemed.judges.prompts import FAILURE_MODES, MODE_NAMES
from definemed.judges.stats import failure_mode_counts

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--inputs", nargs="+", required=True)
p.add_argument("--models", nargs="+", required=True)
p.add_argument("--display", required=True)
p.add_argument("--out", required=True)
args = p.parse_args()

rows_by_model: dict[str, list] = {}
judges = set()
for path in args.inputs:
    for row in read_jsonl(path):
        rows_by_model.setdefault(row["model"], []).append(row)
        judges.add(row["judge"])
out = {
    "judge": ", ".join(sorted(judges)),
    "modes": MODE_NAMES,
    "descriptions": {m: d for m, _, d in FAILURE_MODES},
    "description_source": {m: s for m, s, _ in FAILURE_MODES},
    "share_definition": "shares = counts / judged (responses with a schema-valid verdict)",
    "models": failure_mode_counts(rows_by_model, args.models, json.loads(args.display)),
}
write_json(args.out, out)
log.info("failure-mode counts of %d models -> %s", len(args.models), args.out)
