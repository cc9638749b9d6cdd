"""The medical document classifier (paper 3.2, 3.3, A.2): fine-tuning XLM-RoBERTa on the LLM
labels, choosing the decision threshold, and scoring FineWeb2 shards at scale."""

from __future__ import annotations

import dataclasses
import logging
from typing import ClassVar

import numpy as np
import pyarrow as pa

from definemed.config import Settings
from definemed.dataset.fineweb import iter_shard_batches
from definemed.io import drop_load_flags

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ClassifierSettings(Settings):
    """The classifier section: fine-tuning, the threshold rule and scoring batches."""

    SECTION: ClassVar[str] = "classifier"
    model: str
    max_length: int
    epochs: float
    batch_size: int
    learning_rate: float
    weight_decay: float
    validation_fraction: float
    fbeta: float
    eval_steps: int
    early_stopping_patience: int
    max_tokens_per_batch: int
    threshold: dict
    resources: dict


def fbeta(precision: float, recall: float, beta: float) -> float:
    b2 = beta * beta
    denom = b2 * precision + recall
    return 0.0 if denom == 0 else (1 + b2) * precision * recall / denom


def precision_recall(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float]:
    pred = scores >= threshold
    tp = int((pred & (labels == 1)).sum())
    precision = tp / pred.sum() if pred.sum() else 1.0
    recall = tp / (labels == 1).sum() if (labels == 1).sum() else 0.0
    return float(precision), float(recall)


def threshold_curve(labels: np.ndarray, scores: np.ndarray, steps: int = 101) -> dict:
    """Precision and recall at evenly spaced thresholds (the data behind Figure 4)."""
    thresholds = np.round(np.linspace(0, 1, steps), 6)
    pr = [precision_recall(labels, scores, t) for t in thresholds]
    return {
        "threshold": thresholds.tolist(),
        "precision": [p for p, _ in pr],
        "recall": [r for _, r in pr],
    }


def choose_threshold(rule: dict, labels: np.ndarray | None = None, scores: np.ndarray | None = None) -> dict:
    """{"rule": "fixed", "value": t} as configured, or {"rule": "min_precision", "precision": P}:
    the smallest threshold whose precision on the validation split reaches P."""
    if rule["rule"] == "fixed":
        return {"rule": "fixed", "threshold": float(rule["value"])}
    target = rule["precision"]
    candidates = np.unique(np.concatenate([scores, [1.0]]))
    for t in candidates:  # ascending: the first that reaches the target keeps the most recall
        p, r = precision_recall(labels, scores, t)
        if p >= target and (scores >= t).any():
            return {
                "rule": "min_precision",
                "precision_target": target,
                "threshold": float(t),
                "validation_precision": p,
                "validation_recall": r,
            }
    raise ValueError(f"no threshold reaches validation precision {target}")


class Scorer:
    """P(medical) for documents: length-sorted batches under a token budget, so that documents of
    similar length share a batch and little compute goes to padding."""

    def __init__(self, model_dir, max_length: int, max_tokens_per_batch: int, device=None, pad_multiple=None):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()
        self.max_length = max_length
        self.max_tokens = max_tokens_per_batch
        # On a GPU every new batch width costs kernel selection: round widths up so a shard sees a
        # few shapes (at most max_length / 64) instead of one per distinct document length.
        self.pad_multiple = pad_multiple or (64 if self.device == "cuda" else 1)
        self.stats = {"documents": 0, "tokens": 0, "padded_tokens": 0}

    def batches(self, lengths: np.ndarray, sort: bool = True) -> list[np.ndarray]:
        """Index batches whose padded size (rows x longest row) stays within the token budget."""
        order = np.argsort(-lengths, kind="stable") if sort else np.arange(len(lengths))
        out, current, longest = [], [], 0
        for i in order:
            longest_if = max(longest, int(lengths[i]))
            if current and longest_if * (len(current) + 1) > self.max_tokens:
                out.append(np.array(current))
                current, longest_if = [], int(lengths[i])
            current.append(i)
            longest = longest_if
        if current:
            out.append(np.array(current))
        return out

    def score(self, texts: list[str], sort: bool = True) -> np.ndarray:
        torch = self.torch
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        lengths = np.array([len(e) for e in enc])
        scores = np.zeros(len(texts), dtype=np.float32)
        pad = self.tokenizer.pad_token_id
        with torch.inference_mode():
            for idx in self.batches(lengths, sort):
                width = min(-(-int(lengths[idx].max()) // self.pad_multiple) * self.pad_multiple, self.max_length)
                ids = torch.full((len(idx), width), pad, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for row, i in enumerate(idx):
                    ids[row, : lengths[i]] = torch.tensor(enc[i])
                    mask[row, : lengths[i]] = 1
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
                scores[idx] = torch.softmax(logits.float(), dim=-1)[:, 1].cpu().numpy()
                self.stats["padded_tokens"] += len(idx) * width
        self.stats["documents"] += len(texts)
        self.stats["tokens"] += int(lengths.sum())
        return scores


def score_shard(scorer: Scorer, shard_path, read_documents: int = 50_000) -> pa.Table:
    """id, score and word count for every document of a shard, read in blocks of rows so that a
    4 GB shard never sits in memory whole. The text itself is not copied."""
    ids, scores, words = [], [], []
    for batch in iter_shard_batches(shard_path, ["id", "text"], read_documents):
        texts = batch.column("text").to_pylist()
        ids.extend(batch.column("id").to_pylist())
        scores.append(scorer.score(texts))
        words.append(np.array([len(t.split()) for t in texts], dtype=np.int64))
    return pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "score": pa.array(np.concatenate(scores) if scores else [], pa.float32()),
            "words": pa.array(np.concatenate(words) if words else [], pa.int64()),
        }
    )


TIMING_SUFFIXES = ("_runtime", "_per_second")
# The Trainer's closing `train_loss` is the mean over the steps *this process* ran: after a resume it
# averages fewer steps than an uninterrupted run. The per-step losses above it carry the same data.
PROCESS_KEYS = ("train_loss",)


def without_timings(history: list[dict]) -> list[dict]:
    """The Trainer's log history without its wall-clock entries (train_runtime,
    eval_samples_per_second, ...) and per-process aggregates: the training log is then the same
    bytes on every rerun, resumed or not. Job run times are in Snakemake's benchmark files."""
    return [
        {k: v for k, v in row.items() if not k.endswith(TIMING_SUFFIXES) and k not in PROCESS_KEYS} for row in history
    ]


def train_classifier(train: pa.Table, settings: ClassifierSettings, model_dir, out_dir, work_dir, seed: int) -> dict:
    """Fine-tune a sequence classifier on (text, label); early stopping on validation F-beta
    (beta < 1 weights precision, as the paper). Returns the validation predictions and history."""
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
    )

    from definemed.checkpoints import last_complete_checkpoint
    from definemed.dataset.splits import split
    from definemed.io import claim_work_dir, sha256_text

    fit, val = split(train, settings.validation_fraction, seed, stratify=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)

    def encode(table):
        ds = Dataset.from_dict({"text": table.column("text").to_pylist(), "label": table.column("label").to_pylist()})
        return ds.map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=settings.max_length),
            batched=True,
            remove_columns=["text"],
        )

    beta = settings.fbeta
    # checkpoints are compared at the threshold the filter will use: a model that is right at 0.5
    # but never sure enough for a fixed 0.9 would pass no document into FineMed
    rule = settings.threshold
    at = choose_threshold(rule)["threshold"] if rule["rule"] == "fixed" else 0.5

    def metrics(pred):
        p = torch.softmax(torch.tensor(pred.predictions), -1)[:, 1].numpy()
        prec, rec = precision_recall(pred.label_ids, p, at)
        return {"precision": prec, "recall": rec, "fbeta": fbeta(prec, rec, beta)}

    request = {
        "train_ids": sha256_text("\n".join(train.column("id").to_pylist())),
        "train_labels": sha256_text(",".join(map(str, train.column("label").to_pylist()))),
        "base": str(model_dir),
        "settings": {k: v for k, v in settings.to_dict().items() if k != "resources"},
        "seed": seed,
    }
    reuse = claim_work_dir(work_dir, request)  # a killed job continues from its checkpoint
    args = TrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        lr_scheduler_type="linear",
        optim="adamw_torch",
        eval_strategy="steps",
        eval_steps=settings.eval_steps,
        save_strategy="steps",
        save_steps=settings.eval_steps,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="fbeta",
        greater_is_better=True,
        logging_steps=max(1, settings.eval_steps // 5),
        bf16=torch.cuda.is_available(),
        seed=seed,
        data_seed=seed,
        report_to=[],
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=encode(fit),
        eval_dataset=encode(val),
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=metrics,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=settings.early_stopping_patience)],
    )
    trainer.train(resume_from_checkpoint=last_complete_checkpoint(work_dir) if reuse else None)
    if not trainer.state.best_metric:  # every later stage would get an empty FineMed
        raise ValueError(
            f"classifier: validation F-beta at threshold {at} stayed 0 for {trainer.state.global_step} steps"
            f" (no document called medical); early stopping after {settings.early_stopping_patience} evaluations"
            f" every {settings.eval_steps} steps ended training before it learned: raise"
            " classifier.early_stopping_patience, classifier.epochs or classifier.learning_rate"
        )
    trainer.save_model(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    drop_load_flags(out_dir)
    return {
        "validation": val,
        "history": without_timings(trainer.state.log_history),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_fbeta": trainer.state.best_metric,
        "steps": trainer.state.global_step,
        "train_documents": fit.num_rows,
    }
