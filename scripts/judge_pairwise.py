"""Pairwise LLM-as-judge over all model pairs (paper 5.2, A.7.2): one verdict per pair, query and
presentation order. Failed calls and schema-invalid answers are kept as verdicts with their status.

    python scripts/judge_pairwise.py --queries results/medalpaca/queries.jsonl \
        --generations results/generations/*.jsonl --models m1 m2 ... --settings '<judges.pairwise>' \
        --judges '<judges section>' --estimate results/judges/cost_estimate.json \
        --cache work/judges/pairwise.sqlite --out results/judges/pairwise/verdicts.jsonl \
        --out-stats results/judges/pairwise/run.json
"""

import argparse
from collections import Counter

from _cli import set_torch_threads, setup_logging
from definemed.io import read_json, read_jsonl, write_json, write_jsonl
from definemed.judges.client import JudgeClient, judge_name
from definemed.judges.cost import JudgesSettings, check_budget
from definemed.judges.requests import (
    PairwiseSettings,
    generation_weights,
    load_generations,
    pairwise_requests,
    verdict_row,
)

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--queries", required=True)
p.add_argument("--generations", nargs="+", required=True)
p.add_argument("--models", nargs="+", required=True)
p.add_argument("--settings", required=True, help="config judges.pairwise as JSON")
p.add_argument("--judges", required=True, help="config judges section as JSON (budget)")
p.add_argument("--estimate", required=True, help="the cost estimate written before any call")
p.add_argument("--cache", required=True)
p.add_argument("--model-dir", default=None, help="local backend: the judge model folder")
p.add_argument("--threads", type=int, default=None)
p.add_argument("--out", required=True)
p.add_argument("--out-stats", required=True)
args = p.parse_args()

set_torch_threads(args.threads)
settings, judges = PairwiseSettings.from_json(args.settings), JudgesSettings.from_json(args.judges)
estimate = read_json(args.estimate)
log.info(
    "cost estimate: %.2f USD in total, pairwise %.2f USD", estimate["total"], estimate["calls"]["pairwise"]["cost"]
)
check_budget(estimate["total"], judges.max_cost_usd, f"the judge run ({args.estimate})")
requests = pairwise_requests(
    read_jsonl(args.queries), load_generations(args.generations), args.models, settings.both_orders
)
client = JudgeClient(settings.judge, args.cache, model_dir=args.model_dir)
records, stats = client.run(requests)
judge = judge_name(settings.judge)
rows = [verdict_row(r, records[r.custom_id], judge) for r in requests]
write_jsonl(args.out, rows)
status = Counter(r["status"] for r in rows)
write_json(args.out_stats, {"judge": judge, "backend": settings.judge.backend,
                            "verdicts": len(rows), "status": dict(status),
                            "model_weights_sha256": generation_weights(args.generations)})  # fmt: skip
log.info("%d verdicts %s -> %s (%s)", len(rows), dict(status), args.out, stats.as_dict())
