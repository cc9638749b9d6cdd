"""Fetch the Hub dataset an lm-eval task reads, at the lock's commit, into the project-local
datasets cache (HF_DATASETS_CACHE, set by rules/inputs.smk), where the benchmark jobs read it
offline. Writes a record of what was fetched (configs, splits, rows).

    python scripts/fetch_lm_eval_dataset.py --spec '{"repo": "cais/mmlu", "revision": "<sha>",
        "configs": [{"name": "anatomy", "kwargs": {}}]}' --out data/lm_eval/cais--mmlu.json
"""

import argparse
import json

from _cli import setup_logging
from definemed.inputs import is_commit
from definemed.io import write_json

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--spec", required=True, help="the lock's lm_eval.datasets entry with its repo, as JSON")
p.add_argument("--out", required=True)
args = p.parse_args()

spec = json.loads(args.spec)
if not is_commit(spec.get("revision")):
    raise SystemExit(f"{spec['repo']}: revision {spec.get('revision')!r} is not a commit; run `make lock`")

from datasets import load_dataset  # noqa: E402

record = {"repo": spec["repo"], "revision": spec["revision"], "configs": []}
for cfg in spec["configs"]:
    ds = load_dataset(spec["repo"], cfg["name"], revision=spec["revision"], **cfg.get("kwargs", {}))
    record["configs"].append({"name": cfg["name"], "rows": {split: len(part) for split, part in sorted(ds.items())}})
    log.info("%s/%s@%s: %s", spec["repo"], cfg["name"], spec["revision"], record["configs"][-1]["rows"])
write_json(args.out, record)
