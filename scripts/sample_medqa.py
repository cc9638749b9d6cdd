"""Download the 4-option MedQA test split and draw the seeded sample MedQA-de is made from (5.1).

    python scripts/sample_medqa.py --repo GBaker/MedQA-USMLE-4-options-hf --revision <sha> --split test \
        --sample 500 --seed 42 --out data/benchmarks/medqa_en_sample.jsonl
"""

import argparse

from _cli import setup_logging
from definemed.evaluation.medqa import check_rows, seeded_sample
from definemed.io import write_jsonl

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--repo", required=True)
p.add_argument("--revision", required=True)
p.add_argument("--split", default="test")
p.add_argument("--sample", type=int, required=True)
p.add_argument("--seed", type=int, required=True)
p.add_argument("--out", required=True)
args = p.parse_args()

from datasets import load_dataset  # noqa: E402

source = load_dataset(args.repo, revision=args.revision, split=args.split)
rows = [dict(r, id=str(r.get("id", i))) for i, r in enumerate(source)]
check_rows(rows, f"{args.repo}@{args.revision}:{args.split}")
sample = seeded_sample(rows, args.sample, args.seed)
write_jsonl(args.out, sample, sort_keys=True)
log.info("%d of %d questions -> %s", len(sample), len(rows), args.out)
