"""MedQA-de (paper 5.1): a seeded sample of the 4-option MedQA (USMLE) test set, machine-translated
to German or supplied by the user, in the column layout lm-eval's medqa_4options task reads."""

from __future__ import annotations

import numpy as np

COLUMNS = ("id", "sent1", "ending0", "ending1", "ending2", "ending3", "label")
TRANSLATION_SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "description": "The question in German."},
        "options": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 4,
            "maxItems": 4,
            "description": "The four answer options in German, in the given order.",
        },
    },
    "required": ["question", "options"],
}


def check_rows(rows: list[dict], source: str) -> None:
    """Refuse rows lm-eval's medqa_4options could not score, naming the file and row."""
    for i, row in enumerate(rows):
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            raise ValueError(f"{source}: row {i + 1} lacks column(s) {missing} (need {list(COLUMNS)})")
        if row["label"] not in (0, 1, 2, 3):
            raise ValueError(f"{source}: row {i + 1} has label {row['label']!r}; expected 0-3")
        empty = [c for c in COLUMNS[1:6] if not str(row[c]).strip()]
        if empty:
            raise ValueError(f"{source}: row {i + 1} has empty {empty}")


def seeded_sample(rows: list[dict], size: int, seed: int) -> list[dict]:
    """`size` rows drawn without replacement by a seeded generator, kept in source order."""
    if size > len(rows):
        raise ValueError(f"medqa_de.sample is {size} but the source has only {len(rows)} questions")
    keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=size, replace=False))
    return [{**rows[i], "id": str(rows[i].get("id", i))} for i in keep]


def translated_row(row: dict, answer: dict) -> dict:
    """The English row with its question and options replaced by the German ones; the label (and
    so the correct option's position) is kept."""
    return {
        "id": row["id"],
        "sent1": answer["question"],
        **{f"ending{i}": answer["options"][i] for i in range(4)},
        "label": row["label"],
        "source": {c: row[c] for c in COLUMNS[1:6]},
    }
