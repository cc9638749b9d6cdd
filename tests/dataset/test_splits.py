"""Train/test split and the Table 2 statistics, computed from the data."""

import pyarrow as pa
import pytest

from definemed.dataset.splits import join_labels, split, split_statistics


def make(n=100):
    sample = pa.table({"id": [f"d{i}" for i in range(n)], "text": [" ".join(["wort"] * (i % 7 + 1)) for i in range(n)]})
    labels = pa.table(
        {"id": [f"d{i}" for i in reversed(range(n))], "label": [int(i % 4 == 0) for i in reversed(range(n))]}
    )
    return sample, labels


def test_split_is_seeded_disjoint_and_complete():
    sample, labels = make()
    table = join_labels(labels, sample)
    assert table.column("id").to_pylist() == sample.column("id").to_pylist()
    train, test = split(table, 0.2, seed=5)
    train2, test2 = split(table, 0.2, seed=5)
    assert train.equals(train2) and test.equals(test2)
    ids_train, ids_test = set(train.column("id").to_pylist()), set(test.column("id").to_pylist())
    assert not ids_train & ids_test and len(ids_train | ids_test) == 100 and len(ids_test) == 20
    strat_train, strat_test = split(table, 0.2, seed=5, stratify=True)
    assert sum(strat_test.column("label").to_pylist()) == 5


def test_statistics_count_documents_and_words_per_class():
    sample, labels = make(8)
    table = join_labels(labels, sample)  # labels: d0, d4 medical; words = i % 7 + 1
    stats = split_statistics({"all": table})
    assert stats["all"]["documents"] == {"medical": 2, "other": 6}
    assert stats["all"]["words"] == {"medical": 1 + 5, "other": 2 + 3 + 4 + 6 + 7 + 1}
    assert stats["total"] == stats["all"]


def test_labels_without_document_are_refused():
    sample, labels = make(5)
    extra = pa.concat_tables([labels, pa.table({"id": ["ghost"], "label": [1]})])
    with pytest.raises(ValueError, match="1 labelled ids are missing"):
        join_labels(extra, sample)
