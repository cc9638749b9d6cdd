"""FineMed-de statistics (Table 2, lower part) and the token-matched random FineWeb2-de sample of
the ablation (paper A.5)."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from definemed.dataset.fineweb import iter_shard_batches


def corpus_statistics(finemed_parts, score_files) -> dict:
    """Documents and words of FineMed-de (from its parts) and of FineWeb2-de (from the per-shard
    word counts the scoring jobs record). Words are whitespace-separated tokens, as in Table 2."""
    med_docs = med_words = 0
    for part in finemed_parts:
        for batch in pq.ParquetFile(part).iter_batches(columns=["text"]):
            med_docs += batch.num_rows
            med_words += sum(len(t.split()) for t in batch.column("text").to_pylist())
    all_docs = all_words = 0
    for f in score_files:
        words = pq.read_table(f, columns=["words"]).column("words")
        all_docs += len(words)
        all_words += int(pa.compute.sum(words).as_py() or 0)
    return {
        "FineMed-de": {"documents": med_docs, "words": med_words},
        "FineWeb2-de": {"documents": all_docs, "words": all_words},
        "share_of_documents": med_docs / all_docs if all_docs else None,
        "shards": len(score_files),
    }


def sample_key(seed: int, doc_id: str) -> float:
    """A seeded uniform number per document, independent of where the document is stored."""
    digest = hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_heldout(seed: int, doc_id: str, fraction: float) -> bool:
    """Documents set aside from continual pre-training to measure held-out perplexity."""
    return sample_key(seed + 1_000_003, doc_id) < fraction


def count_tokens(tokenizer, texts: list[str]) -> np.ndarray:
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return np.array([len(i) for i in ids], dtype=np.int64)


def finemed_tokens(tokenizer, finemed_parts) -> tuple[int, int]:
    """(tokens, words) of FineMed-de in the given tokenizer."""
    tokens = words = 0
    for part in finemed_parts:
        for batch in pq.ParquetFile(part).iter_batches(columns=["text"], batch_size=10_000):
            texts = batch.column("text").to_pylist()
            tokens += int(count_tokens(tokenizer, texts).sum())
            words += sum(len(t.split()) for t in texts)
    return tokens, words


def _draw(tokenizer, shard_paths, score_files, seed: int, lo: float, hi: float) -> list[pa.Table]:
    """Documents whose seeded key lies in [lo, hi), in one streaming pass over the shards."""
    parts = []
    for shard, scores in zip(shard_paths, score_files, strict=True):
        score_of = dict(
            zip(*(pq.read_table(scores, columns=["id", "score"]).column(c).to_pylist() for c in ("id", "score")))
        )
        for batch in iter_shard_batches(shard, ["id", "text"], 50_000):
            ids = batch.column("id").to_pylist()
            keys = np.array([sample_key(seed, i) for i in ids])
            keep = np.flatnonzero((keys >= lo) & (keys < hi))
            if len(keep):
                texts = [batch.column("text")[int(k)].as_py() for k in keep]
                parts.append(
                    pa.table(
                        {
                            "id": [ids[k] for k in keep],
                            "text": texts,
                            "key": keys[keep],
                            "tokens": count_tokens(tokenizer, texts),
                            "score": np.array([score_of[ids[k]] for k in keep], dtype=np.float32),
                        }
                    )
                )
    return parts


def token_matched_sample(
    tokenizer,
    shard_paths,
    score_files,
    target_tokens: int,
    target_words: int,
    total_words: int,
    seed: int,
    threshold: float,
    margin: float = 1.2,
) -> tuple[pa.Table, dict]:
    """Documents drawn uniformly at random from all shards until their tokens reach `target_tokens`.

    Every document gets a seeded key; documents are taken in key order until the target is met,
    which makes the draw uniform, reproducible and independent of how the corpus is sharded. A
    streaming pass reads the documents with key < p, p = margin * target_words / total_words; if
    their tokens fall short (general text may need fewer tokens per word than medical text), a
    further pass reads the next key range. The result equals that of one pass with a large p."""
    if target_tokens <= 0:
        raise ValueError("the token target is 0: FineMed is empty (did the classifier keep any document?)")
    parts, lo, passes = [], 0.0, 0
    hi = min(1.0, margin * target_words / max(1, total_words))
    while True:
        parts += _draw(tokenizer, shard_paths, score_files, seed, lo, hi)
        passes += 1
        tokens = sum(int(pa.compute.sum(t.column("tokens")).as_py()) for t in parts)
        if tokens >= target_tokens or hi >= 1.0:
            break
        lo, hi = hi, min(1.0, hi * max(1.25, 1.1 * target_tokens / max(1, tokens)))
    if tokens < target_tokens:
        raise ValueError(f"the corpus holds {tokens} tokens, fewer than the target {target_tokens}")
    drawn = pa.concat_tables(parts)
    drawn = drawn.take(pa.compute.sort_indices(drawn, [("key", "ascending"), ("id", "ascending")]))
    cumulative = np.cumsum(drawn.column("tokens").to_numpy())
    n = int(np.searchsorted(cumulative, target_tokens) + 1)
    sample = drawn.slice(0, n).drop_columns(["key"])
    medical = np.array(sample.column("score").to_pylist()) >= threshold
    stats = {
        "target_tokens": int(target_tokens),
        "tokens": int(cumulative[n - 1]),
        "documents": n,
        "passes": passes,
        "medical_documents": int(medical.sum()),
        "medical_share": float(medical.mean()),
        "threshold": threshold,
        "seed": seed,
    }
    return sample, stats
