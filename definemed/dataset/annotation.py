"""Human validation of the LLM labels (paper A.1.1, Table 5).

A blinded sample (LLM label and document id hidden) is exported as one CSV per annotator; the key
that maps items back stays with the workflow. Filled CSVs are scored against the annotators'
majority: precision, recall, F1 and accuracy of the LLM, and inter-annotator agreement as Fleiss'
kappa and Randolph's free-marginal kappa (the paper cites Randolph 2005).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa

from definemed.io import atomic_path

YES = {"1", "yes", "ja", "true", "medical", "y", "j"}
NO = {"0", "no", "nein", "false", "other", "n"}
ANSWER_COLUMN = "is_medical"


def select_items(labels: pa.Table, texts: pa.Table, medical: int, other: int, seed: int) -> pa.Table:
    """`medical` LLM-medical and `other` LLM-non-medical documents, seeded, in random order."""
    rng = np.random.default_rng([seed, 5])
    lab = np.asarray(labels.column("label").to_numpy(), dtype=bool)
    picks = []
    for want, pool in ((medical, np.flatnonzero(lab)), (other, np.flatnonzero(~lab))):
        if want > len(pool):
            raise ValueError(f"asked for {want} items but the LLM labels hold only {len(pool)} of that class")
        picks.append(rng.choice(pool, size=want, replace=False))
    order = rng.permutation(np.concatenate(picks))
    chosen = labels.take(pa.array(order))
    text_of = dict(zip(texts.column("id").to_pylist(), texts.column("text").to_pylist()))
    return pa.table(
        {
            "item": [f"item-{i + 1:04d}" for i in range(len(order))],
            "id": chosen.column("id"),
            "llm_label": chosen.column("label"),
            "text": [text_of[i] for i in chosen.column("id").to_pylist()],
        }
    )


def write_annotation_sheets(items: pa.Table, out_dir, annotators: int) -> list[Path]:
    """One blinded CSV per annotator (item, text, empty is_medical) plus key.csv (not to share)."""
    out_dir = Path(out_dir)
    paths = []
    for a in range(1, annotators + 1):
        path = out_dir / f"annotator-{a}.csv"
        write_csv(
            path,
            ["item", "text", ANSWER_COLUMN],
            zip(items.column("item").to_pylist(), items.column("text").to_pylist(), [""] * items.num_rows),
        )
        paths.append(path)
    write_csv(
        out_dir / "key.csv",
        ["item", "id", "llm_label"],
        zip(*(items.column(c).to_pylist() for c in ("item", "id", "llm_label"))),
    )
    return paths


def write_csv(path, header, rows) -> None:
    with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def read_annotations(path, items: list[str]) -> dict[str, int]:
    """A filled sheet as item -> 0/1; every item must be answered with a recognisable value."""
    answers = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "item" not in reader.fieldnames or ANSWER_COLUMN not in reader.fieldnames:
            raise ValueError(f"{path}: needs columns 'item' and '{ANSWER_COLUMN}', has {reader.fieldnames}")
        for row_no, row in enumerate(reader, start=2):
            value = (row[ANSWER_COLUMN] or "").strip().lower()
            if value in YES:
                answers[row["item"]] = 1
            elif value in NO:
                answers[row["item"]] = 0
            else:
                raise ValueError(
                    f"{path}: row {row_no} (item {row['item']}): "
                    f"'{ANSWER_COLUMN}' is {row[ANSWER_COLUMN]!r}; expected yes/no or 1/0"
                )
    missing = [i for i in items if i not in answers]
    if missing:
        raise ValueError(f"{path}: {len(missing)} item(s) not annotated, e.g. {missing[:3]}")
    return answers


def validation_metrics(key: dict[str, int], annotations: list[dict[str, int]]) -> dict:
    """LLM vs. annotators' majority (ties count as non-medical: precision first, as the paper)."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    items = sorted(key)
    ratings = np.array([[a[i] for a in annotations] for i in items])  # items x annotators
    votes = ratings.sum(axis=1)
    majority = (votes * 2 > ratings.shape[1]).astype(int)
    llm = np.array([key[i] for i in items])
    table, _ = aggregate_raters(ratings, n_cat=2)
    both = len(annotations) > 1
    tp, fp = int(((llm == 1) & (majority == 1)).sum()), int(((llm == 1) & (majority == 0)).sum())
    fn, tn = int(((llm == 0) & (majority == 1)).sum()), int(((llm == 0) & (majority == 0)).sum())
    return {
        "items": len(items),
        "annotators": len(annotations),
        "llm_medical_items": int(llm.sum()),
        "precision": float(precision_score(majority, llm, zero_division=0)),
        "recall": float(recall_score(majority, llm, zero_division=0)),
        "f1": float(f1_score(majority, llm, zero_division=0)),
        "accuracy": float(accuracy_score(majority, llm)),
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "fleiss_kappa": float(fleiss_kappa(table, method="fleiss")) if both else None,
        "randolph_kappa": float(fleiss_kappa(table, method="randolph")) if both else None,
        "unanimous_share": float(np.mean((votes == 0) | (votes == ratings.shape[1]))),
    }


def simulate_annotator(truth: dict[str, bool], items: list[str], error_rate: float, seed: int) -> dict:
    """Miniature only: an annotator who knows the fixture's ground truth and errs at `error_rate`."""
    rng = np.random.default_rng(seed)
    return {i: int(truth[i]) ^ int(rng.random() < error_rate) for i in items}


# ---------------------------------------------------------------- Table 6: the false positives by kind

KIND_COLUMN = "kind"


def false_positives(key: dict[str, int], annotations: list[dict[str, int]]) -> list[str]:
    """Items the LLM labelled medical and the annotators' majority did not (ties are not medical,
    as in validation_metrics): Table 5's false positives, whose kinds Table 6 counts."""
    n = len(annotations)
    return [i for i in sorted(key) if key[i] == 1 and not sum(a[i] for a in annotations) * 2 > n]


def kind_counts(path) -> list[tuple[str, int]]:
    """(kind, documents) of a filled false-positive sheet, most frequent first; every row needs a kind."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if KIND_COLUMN not in (reader.fieldnames or []):
            raise ValueError(f"{path}: no column {KIND_COLUMN!r}")
        kinds = []
        for row_number, row in enumerate(reader, start=2):
            kind = (row[KIND_COLUMN] or "").strip()
            if not kind:
                raise ValueError(f"{path}: row {row_number} (item {row.get('item')}) has no {KIND_COLUMN}")
            kinds.append(kind)
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def excerpt(text: str, limit: int = 240) -> str:
    """The start of a document as Table 6 quotes it: whitespace folded, cut at a word boundary
    before `limit` characters, an ellipsis where text was cut."""
    words = " ".join(text.split())
    if len(words) <= limit:
        return words
    cut = words[:limit].rsplit(" ", 1)[0]
    return f"{cut} …"


def kind_examples(path, limit: int = 240) -> list[tuple[str, int, str]]:
    """(kind, documents, excerpt of the kind's first document in the sheet) of a filled
    false-positive sheet, in kind_counts' order: Table 6's rows."""
    counts = kind_counts(path)
    with open(path, newline="", encoding="utf-8") as f:
        first: dict[str, str] = {}
        for row in csv.DictReader(f):
            first.setdefault(row[KIND_COLUMN].strip(), row["text"])
    return [(kind, n, excerpt(first[kind], limit)) for kind, n in counts]
