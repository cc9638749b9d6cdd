"""The labelled set's train/test split and its statistics (paper 3.2, Table 2, upper part)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def join_labels(labels: pa.Table, sample: pa.Table) -> pa.Table:
    """id, text, label for every labelled document; refuses labels without a sampled document."""
    joined = sample.select(["id", "text"]).join(labels.select(["id", "label"]), "id", join_type="inner")
    if joined.num_rows != labels.num_rows:
        raise ValueError(f"{labels.num_rows - joined.num_rows} labelled ids are missing from the sample")
    # joins do not keep order: restore the sample's order so that the split is reproducible
    order = {i: k for k, i in enumerate(sample.column("id").to_pylist())}
    keys = pa.array([order[i] for i in joined.column("id").to_pylist()])
    return joined.take(pc.sort_indices(keys))


def split(table: pa.Table, test_fraction: float, seed: int, stratify: bool = False):
    """Seeded random split into (train, test); with `stratify`, per label."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(table.num_rows)
    labels = table.column("label").to_numpy() if stratify else None
    train, test = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=labels)
    return table.take(pa.array(np.sort(train))), table.take(pa.array(np.sort(test)))


def word_count(texts) -> np.ndarray:
    """Words as Table 2 counts them: whitespace-separated tokens."""
    return np.array([len(t.split()) for t in texts], dtype=np.int64)


def split_statistics(parts: dict[str, pa.Table]) -> dict:
    """Documents and words per class ("medical"/"other") for each part and in total."""
    out = {}
    totals = {"documents": {"medical": 0, "other": 0}, "words": {"medical": 0, "other": 0}}
    for name, table in parts.items():
        lab = table.column("label").to_numpy().astype(bool)
        words = word_count(table.column("text").to_pylist())
        row = {
            "documents": {"medical": int(lab.sum()), "other": int((~lab).sum())},
            "words": {"medical": int(words[lab].sum()), "other": int(words[~lab].sum())},
        }
        for k in totals:
            for c in totals[k]:
                totals[k][c] += row[k][c]
        out[name] = row
    out["total"] = totals
    return out
