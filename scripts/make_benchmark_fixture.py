"""Write one fixture benchmark (miniature) as JSONL in its lm-eval dataset's column layout.

    python scripts/make_benchmark_fixture.py --task anatomy --spec '{"layout": "mmmlu", "area": "anatomy"}' \
        --seed 1234 --out miniature/data/benchmarks/anatomy.jsonl
"""

import argparse
import json

from _cli import setup_logging
from definemed.io import write_jsonl
from definemed.miniature.benchmark_fixtures import fixture_items

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--task", required=True)
p.add_argument("--spec", required=True, help="benchmarks.tasks.<task>.fixture as JSON")
p.add_argument("--seed", type=int, required=True)
p.add_argument("--out", required=True)
args = p.parse_args()

rows = fixture_items(seed=args.seed, **json.loads(args.spec))
write_jsonl(args.out, rows, sort_keys=True)
log.info("%s: %d items -> %s", args.task, len(rows), args.out)
