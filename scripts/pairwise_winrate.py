"""Win-rate matrix of the pairwise verdicts with counts and 95% Wilson intervals (Figure 2's data).

    python scripts/pairwise_winrate.py --verdicts results/judges/pairwise/verdicts.jsonl \
        --models m1 m2 ... --display '{"m1": "...", ...}' --out results/judges/pairwise/winrate.json
"""

import argparse
import json

from _cli import setup_logging
from definemed.io import read_jsonl, write_json
from definemed.judges.stats import WIN_RATE_DEFINITION, position_bias, winrate_matrix

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--verdicts", required=True)
p.add_argument("--models", nargs="+", required=True)
p.add_argument("--display", required=True, help="{model: display name} as JSON")
p.add_argument("--out", required=True)
args = p.parse_args()

verdicts = read_jsonl(args.verdicts)
judges = sorted({v["judge"] for v in verdicts})
out = {
    "judge": ", ".join(judges),
    "models": args.models,
    "display": json.loads(args.display),
    "win_rate_definition": WIN_RATE_DEFINITION,
    "verdicts": len(verdicts),
    "invalid": sum(v["status"] != "valid" for v in verdicts),
    "position_bias": position_bias(verdicts),
    "matrix": winrate_matrix(verdicts, args.models),
}
write_json(args.out, out)
log.info("win-rate matrix of %d models from %d verdicts -> %s", len(args.models), len(verdicts), args.out)
