"""Failure modes of every response (paper 5.3, A.7.3, Table 10): the 14 boolean modes per response,
one JSONL per model. Failed calls and schema-invalid answers are kept with their status.

    python scripts/judge_failure_modes.py --queries results/medalpaca/queries.jsonl \
        --generations results/generations/*.jsonl --models m1 m2 ... --settings '<judges.failure_modes>' \
        --judges '<judges section>' --estimate results/judges/cost_estimate.json \
        --cache work/judges/failure_modes.sqlite --out-dir results/judges/failure_modes \
        --out-stats results/judges/failure_modes/run.json
"""

import argparse
import os
from collections import Counter

from _cli import set_torch_threads, setup_logging
from definemed.io import read_json, read_jsonl, write_json, write_jsonl
from definemed.judges.client import JudgeClient, judge_name
from definemed.judges.cost import JudgesSettings, check_budget
from definemed.judges.requests import (
    JudgeStageSettings,
    failure_mode_requests,
    failure_mode_row,
    generation_weights,
    load_generations,
)

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--queries", required=True)
p.add_argument("--generations", nargs="+", required=True)
p.add_argument("--models", nargs="+", required=True)
p.add_argument("--settings", required=True, help="config judges.failure_modes as JSON")
p.add_argument("--judges", required=True, help="config judges section as JSON (budget)")
p.add_argument("--estimate", required=True, help="the cost estimate written before any call")
p.add_argument("--cache", required=True)
p.add_argument("--model-dir", default=None)
p.add_argument("--threads", type=int, default=None)
p.add_argument("--out-dir", required=True)
p.add_argument("--out-stats", required=True)
args = p.parse_args()

set_torch_threads(args.threads)
settings, judges = JudgeStageSettings.from_json(args.settings), JudgesSettings.from_json(args.judges)
estimate = read_json(args.estimate)
log.info(
    "cost estimate: %.2f USD in total, failure modes %.2f USD",
    estimate["total"],
    estimate["calls"]["failure_modes"]["cost"],
)
check_budget(estimate["total"], judges.max_cost_usd, f"the judge run ({args.estimate})")
requests = failure_mode_requests(read_jsonl(args.queries), load_generations(args.generations), args.models)
client = JudgeClient(settings.judge, args.cache, model_dir=args.model_dir)
records, stats = client.run(requests)
judge = judge_name(settings.judge)
rows = [failure_mode_row(r, records[r.custom_id], judge) for r in requests]
for m in args.models:
    write_jsonl(os.path.join(args.out_dir, f"{m}.jsonl"), (r for r in rows if r["model"] == m))
status = Counter(r["status"] for r in rows)
write_json(args.out_stats, {"judge": judge, "backend": settings.judge.backend, "responses": len(rows),
                            "status": dict(status),
                            "model_weights_sha256": generation_weights(args.generations)})  # fmt: skip
log.info("%d responses judged %s -> %s (%s)", len(rows), dict(status), args.out_dir, stats.as_dict())
