"""Machine-translate sampled MedAlpaca rows to German through the judge client (cached, resumable).

    python scripts/translate_queries.py --sample results/medalpaca/sample_en.jsonl \
        --settings '<medalpaca.translation as JSON>' --judges '<judges.prices and max_cost_usd>' --context answer \
        --cache work/judges/translation.sqlite --out results/medalpaca/queries.jsonl \
        --out-stats results/medalpaca/translation.json
Rows whose translation failed or broke the schema are kept out of the queries and listed in the stats.
"""

import argparse
import json

from _cli import setup_logging
from definemed.io import read_jsonl, write_json, write_jsonl
from definemed.judges.client import JudgeClient
from definemed.judges.cost import JudgeBudgetSettings, check_budget, estimate_stage
from definemed.judges.prompts import TRANSLATION_SCHEMA, parse_answer
from definemed.judges.requests import JudgeStageSettings, translation_requests

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--sample", required=True)
p.add_argument("--settings", required=True, help="config medalpaca.translation as JSON")
p.add_argument("--judges", required=True, help="config judges.prices and judges.max_cost_usd as JSON")
p.add_argument("--context", choices=["answer", "none"], default="answer")
p.add_argument("--cache", required=True)
p.add_argument("--model-dir", default=None, help="local backend: the model folder")
p.add_argument("--out", required=True)
p.add_argument("--out-stats", required=True)
args = p.parse_args()

settings, budget = JudgeStageSettings.from_json(args.settings), JudgeBudgetSettings.from_json(args.judges)
rows = read_jsonl(args.sample)
requests = translation_requests(rows)
estimate = estimate_stage("translation", requests, settings.judge, budget.prices, settings.output_tokens)
log.info("cost estimate before any call: %s", json.dumps(estimate))
check_budget(estimate["cost"], budget.max_cost_usd, f"{estimate['stage']} ({estimate['calls']} calls)")
client = JudgeClient(settings.judge, args.cache, model_dir=args.model_dir)
records, stats = client.run(requests)
queries, failed = [], []
for row, req in zip(rows, requests):
    answer, error = parse_answer(records[req.custom_id], TRANSLATION_SCHEMA)
    if answer is None:
        failed.append({"id": row["id"], "error": error})
        continue
    context = answer["answer"] if args.context == "answer" else ""
    queries.append({"id": row["id"], "query": answer["question"], "context": context, "source": row})
write_jsonl(args.out, queries)
write_json(args.out_stats, {"estimate": estimate, "translated": len(queries), "failed": failed})
log.info("%d translated, %d failed -> %s (%s)", len(queries), len(failed), args.out, stats.as_dict())
