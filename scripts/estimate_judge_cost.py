"""Cost of the judge calls before any paid call: token counts of the rendered prompts and the
config's price table (paper 5.2, 5.3). Printed and written as JSON.

    python scripts/estimate_judge_cost.py --queries results/medalpaca/queries.jsonl \
        --generations results/generations/*.jsonl --models m1 m2 ... \
        --judges '<judges section as JSON>' [--translation-sample results/medalpaca/sample_en.jsonl \
        --translation '<medalpaca.translation as JSON>'] --out results/judges/cost_estimate.json

Planning (no generations yet): --plan --config config.yaml [--query-chars N --context-chars N
--response-tokens N --translation-chars N] builds queries and responses of those lengths.
"""

import argparse
import json

from _cli import setup_logging
from definemed.io import read_jsonl, write_json
from definemed.judges.cost import JudgesSettings, cost_estimate, plan_cost
from definemed.judges.requests import JudgeStageSettings, load_generations

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--queries")
p.add_argument("--generations", nargs="*", default=[])
p.add_argument("--models", nargs="*", default=[])
p.add_argument("--judges", help="config judges section as JSON")
p.add_argument("--translation-sample")
p.add_argument("--translation", help="config medalpaca.translation as JSON")
p.add_argument("--plan", action="store_true")
p.add_argument("--config")
p.add_argument("--query-chars", type=int, default=120)
p.add_argument("--context-chars", type=int, default=800)
p.add_argument("--response-tokens", type=int, default=500)
p.add_argument("--translation-chars", type=int, default=900, help="question + reference answer, English")
p.add_argument("--out")
args = p.parse_args()

if args.plan:
    from definemed.config import load

    estimate = plan_cost(
        load(args.config), args.query_chars, args.context_chars, args.response_tokens, args.translation_chars
    )
    estimate["plan"]["config"] = args.config
else:
    judges = JudgesSettings.from_json(args.judges)
    translation = None
    if args.translation_sample:
        translation = (read_jsonl(args.translation_sample), JudgeStageSettings.from_json(args.translation))
    estimate = cost_estimate(
        read_jsonl(args.queries), load_generations(args.generations), args.models, judges, translation
    )
for stage, s in estimate["calls"].items():
    log.info(
        "%s: %d calls to %s (%s), %d input tokens, %d output tokens assumed: %.2f USD",
        stage, s["calls"], s["model"], s["backend"], s["input_tokens"], s["output_tokens_assumed"], s["cost"],
    )  # fmt: skip
log.info("estimated total: %.2f USD", estimate["total"])
print(json.dumps(estimate, indent=2))
if args.out:
    write_json(args.out, estimate)
