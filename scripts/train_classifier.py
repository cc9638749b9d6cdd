"""Fine-tune the medical document classifier on the LLM-labelled train split (paper 3.2, A.2).

    python scripts/train_classifier.py --train results/labels/train.parquet --base-model models/xlm-roberta-base \
        --settings '<classifier section as JSON>' --seed 42 --work-dir work/classifier \
        --out-model results/classifier/model --out-log results/classifier/training_log.jsonl \
        --out-validation results/classifier/validation_scores.parquet
"""

import argparse

import pyarrow as pa
import pyarrow.parquet as pq

from _cli import set_torch_threads, setup_logging
from definemed.dataset.classifier import ClassifierSettings, Scorer, train_classifier
from definemed.io import atomic_dir, write_jsonl, write_parquet

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--train", required=True)
p.add_argument("--base-model", required=True)
p.add_argument("--settings", required=True)
p.add_argument("--seed", type=int, required=True)
p.add_argument("--work-dir", required=True, help="checkpoints, kept outside the outputs for resuming")
p.add_argument("--out-model", required=True)
p.add_argument("--out-log", required=True)
p.add_argument("--out-validation", required=True)
p.add_argument("--threads", type=int, default=None)
args = p.parse_args()

settings = ClassifierSettings.from_json(args.settings)
set_torch_threads(args.threads)
with atomic_dir(args.out_model) as tmp:
    result = train_classifier(pq.read_table(args.train), settings, args.base_model, tmp, args.work_dir, args.seed)
# sorted keys: a resumed Trainer restores its log from a checkpoint's (sorted) trainer_state.json
write_jsonl(args.out_log, result["history"], sort_keys=True, ensure_ascii=True)
val = result["validation"]
scorer = Scorer(args.out_model, settings.max_length, settings.max_tokens_per_batch)
scores = scorer.score(val.column("text").to_pylist())
write_parquet(
    args.out_validation,
    pa.table({"id": val.column("id"), "label": val.column("label"), "score": pa.array(scores)}),
    metadata={
        "best_fbeta": result["best_fbeta"],
        "steps": result["steps"],
        "train_documents": result["train_documents"],
    },
)
log.info(
    "trained %d steps on %d documents; best validation F-beta %.4f",
    result["steps"],
    result["train_documents"],
    result["best_fbeta"],
)
