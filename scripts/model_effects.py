"""The effects between rows of Tables 4, 9 and 11 with their noise (paired over the same benchmark
items) and each CPT run's held-out perplexity shift: results/effects.json, read by the reproduction
report and by the tests that hold the miniature to its pattern.

    python scripts/model_effects.py --config-json '{...}' --results-dir results \
        --perplexity results/cpt/*/perplexity.json --out results/effects.json
"""

import argparse
import json
from pathlib import Path

from _cli import setup_logging
from definemed.evaluation.effects import measure
from definemed.io import write_json

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--config-json", required=True, help="the config sections cpt and benchmarks as JSON")
p.add_argument("--results-dir", required=True)
p.add_argument("--perplexity", nargs="*", default=[], help="results/cpt/<run>/perplexity.json files")
p.add_argument("--sigma", type=float, default=2.0)
p.add_argument("--out", required=True)
args = p.parse_args()

perplexities = {Path(f).parent.name: json.loads(Path(f).read_text()) for f in args.perplexity}
effects = measure(json.loads(args.config_json), args.results_dir, perplexities, args.sigma)
write_json(args.out, effects)
for row in effects["comparisons"]:
    log.info(
        "%s %s (%s): %+.3f ± %.3f over %d items: %s",
        row["run"], row["name"], row["group"], row["difference"], row["stderr"], row["n"], row["verdict"],
    )  # fmt: skip
