"""Label sampled documents medical / not medical with an instruction-tuned LLM (paper 3.2, A.1).

    python scripts/label_documents.py --sample results/labels/sample.parquet \
        --model-dir models/mixtral-8x7b-instruct-v0.1 --settings '<labelling section as JSON>' \
        --work-dir work/labels --out results/labels/llm_labels.parquet
Finished chunks in --work-dir are reused: a killed run resumes where it stopped.
"""

import argparse

import pyarrow.parquet as pq

from _cli import set_torch_threads, setup_logging
from definemed.dataset.labelling import LabellingSettings, label_documents, make_scorer
from definemed.io import write_parquet

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--sample", required=True)
p.add_argument("--model-dir", required=True)
p.add_argument("--settings", required=True, help="config section labelling as JSON")
p.add_argument("--work-dir", required=True)
p.add_argument("--out", required=True)
p.add_argument("--threads", type=int, default=None)
args = p.parse_args()

settings = LabellingSettings.from_json(args.settings)
set_torch_threads(args.threads)
request = settings.request(args.model_dir)
scorer = make_scorer(settings, args.model_dir)
labels = label_documents(pq.read_table(args.sample, columns=["id", "text"]), scorer, settings, args.work_dir, request)
write_parquet(args.out, labels, metadata={**request, "yes_token_ids": scorer.yes_ids, "no_token_ids": scorer.no_ids})
log.info(
    "%d documents labelled, %d medical -> %s",
    labels.num_rows,
    sum(labels.column("label").to_pylist()),
    args.out,
)
