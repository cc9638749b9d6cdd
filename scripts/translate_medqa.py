"""Machine-translate the MedQA sample to German through the judge client (5.1; cached, resumable).

    python scripts/translate_medqa.py --sample data/benchmarks/medqa_en_sample.jsonl \\
        --settings '<medqa_de.translation as JSON>' --judges '<judges.prices and max_cost_usd as JSON>' \\
        --cache work/benchmarks/medqa_translation.sqlite --out data/benchmarks/medqa_de.jsonl \\
        --out-stats results/benchmarks/medqa_de_translation.json
MedQA-de must hold every sampled question: a question whose translation failed or broke the schema
stops the job (listed in the stats). A rerun sends the failed calls again and nothing answered twice;
an answer that broke the schema stays cached (supply the question by hand through medqa_de.file).
"""

import argparse
import dataclasses
import json

from _cli import setup_logging
from definemed.evaluation.medqa import TRANSLATION_SCHEMA, check_rows, translated_row
from definemed.io import read_jsonl, write_json, write_jsonl
from definemed.judges.client import JudgeClient
from definemed.judges.cost import JudgeBudgetSettings, check_budget, estimate_stage
from definemed.judges.prompts import parse_answer
from definemed.judges.requests import JudgeStageSettings, medqa_translation_requests

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--sample", required=True)
p.add_argument("--settings", required=True, help="config medqa_de.translation as JSON")
p.add_argument("--judges", required=True, help="config judges.prices and judges.max_cost_usd as JSON")
p.add_argument("--cache", required=True)
p.add_argument("--model-dir", default=None, help="local backend: the model folder")
p.add_argument("--out", required=True)
p.add_argument("--out-stats", required=True)
args = p.parse_args()

settings, budget = JudgeStageSettings.from_json(args.settings), JudgeBudgetSettings.from_json(args.judges)
rows = read_jsonl(args.sample)
requests = medqa_translation_requests(rows)
estimate = estimate_stage("medqa_translation", requests, settings.judge, budget.prices, settings.output_tokens)
log.info("cost estimate before any call: %s", json.dumps(estimate))
check_budget(estimate["cost"], budget.max_cost_usd, f"{estimate['stage']} ({estimate['calls']} calls)")
# a recorded failure is sent again on a rerun: MedQA-de needs every question
judge = dataclasses.replace(settings.judge, retry_failed=True)
client = JudgeClient(judge, args.cache, model_dir=args.model_dir)
records, stats = client.run(requests)
out, failed = [], []
for row, req in zip(rows, requests):
    answer, error = parse_answer(records[req.custom_id], TRANSLATION_SCHEMA)
    if answer is None:
        failed.append({"id": row["id"], "error": error})
    else:
        out.append(translated_row(row, answer))
write_json(args.out_stats, {"estimate": estimate, "translated": len(out), "failed": failed})
if failed:
    raise SystemExit(
        f"{len(failed)} of {len(rows)} MedQA translations failed (see {args.out_stats}); rerun to retry them"
    )
check_rows(out, "translated MedQA-de")
write_jsonl(args.out, out, sort_keys=True)
log.info("%d questions translated -> %s (%s)", len(out), args.out, stats.as_dict())
