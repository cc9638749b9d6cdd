"""Label sampled documents medical / not medical with an instruction-tuned LLM (paper 3.2, A.1).

    python scripts/label_documents.py --sample results/labels/sample.parquet \
        --model-dir models/mixtral-8x7b-instruct-v0.1 --settings '<labelling section as JSON>' \
        --work-dir work/labels --out results/labels/llm_labels.parquet
Finished chunks in --work-dir are reused: a killed run resumes where it stopped.
"""

import argparse
import json

import pyarrow.parquet as pq

from _cli import set_torch_threads, setup_logging
from definemed.dataset.labelling import label_documents, make_scorer, model_fingerprint
from definemed.io import sha256_text, write_parquet

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--sample", required=True)
p.add_argument("--model-dir", required=True)
p.add_argument("--settings", required=True, help="config section labelling as JSON")
p.add_argument("--work-dir", required=True)
p.add_argument("--out", required=True)
p.add_argument("--threads", type=int, default=None)
args = p.parse_args()

settings = json.loads(args.settings)
set_torch_threads(args.threads)
request = {
    "model": model_fingerprint(args.model_dir),
    "backend": settings["backend"],
    "prompt_sha256": sha256_text(settings["prompt"]),
    "answer_words": settings["answer_words"],
    "max_document_tokens": settings["max_document_tokens"],
    "chat_template_date": settings["chat_template_date"],
}
scorer = make_scorer(
    settings["backend"],
    args.model_dir,
    settings["answer_words"],
    batch_size=settings.get("batch_size", 16),
    vllm_args=settings.get("vllm"),
)
labels = label_documents(
    pq.read_table(args.sample, columns=["id", "text"]),
    scorer,
    settings["prompt"],
    settings["max_document_tokens"],
    settings["chat_template_date"],
    settings.get("chunk_size", 10000),
    args.work_dir,
    request,
)
write_parquet(args.out, labels, metadata={**request, "yes_token_ids": scorer.yes_ids, "no_token_ids": scorer.no_ids})
log.info(
    "%d documents labelled, %d medical -> %s",
    labels.num_rows,
    sum(labels.column("label").to_pylist()),
    args.out,
)
