"""Table 2 (upper part) and Table 5 of the miniature, recomputed here from the files they summarise."""

import csv
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def test_split_stats_are_computed_from_the_split_files(miniature, miniature_config):
    labels_dir = miniature / "results" / "labels"
    stats = json.loads((labels_dir / "split_stats.json").read_text())
    train, test = pq.read_table(labels_dir / "train.parquet"), pq.read_table(labels_dir / "test.parquet")
    for name, table in (("train", train), ("test", test)):
        lab = np.array(table.column("label").to_pylist(), dtype=bool)
        words = np.array([len(t.split()) for t in table.column("text").to_pylist()])
        assert stats[name]["documents"] == {"medical": int(lab.sum()), "other": int((~lab).sum())}
        assert stats[name]["words"] == {"medical": int(words[lab].sum()), "other": int(words[~lab].sum())}
    n = miniature_config["labelling"]["sample_size"]
    assert train.num_rows + test.num_rows == n
    assert test.num_rows == round(n * miniature_config["split"]["test_fraction"])
    # labels in the split are the LLM's, not the fixture's ground truth
    llm = dict(zip(*(pq.read_table(labels_dir / "llm_labels.parquet").column(c).to_pylist() for c in ("id", "label"))))
    assert all(llm[i] == y for i, y in zip(test.column("id").to_pylist(), test.column("label").to_pylist()))


def test_label_validation_is_computed_from_the_sheets(miniature, miniature_config):
    ann = miniature / "results" / "labels" / "annotation"
    result = json.loads((miniature / "results" / "labels" / "label_validation.json").read_text())
    with open(ann / "key.csv", newline="") as f:
        key = {r["item"]: int(r["llm_label"]) for r in csv.DictReader(f)}
    sheets = []
    for k in range(1, miniature_config["label_validation"]["annotators"] + 1):
        with open(ann / "simulated" / f"annotator-{k}.csv", newline="") as f:
            sheets.append({r["item"]: int(r["is_medical"] == "yes") for r in csv.DictReader(f)})
    majority = {i: int(sum(s[i] for s in sheets) * 2 > len(sheets)) for i in key}
    tp = sum(key[i] and majority[i] for i in key)
    fp = sum(key[i] and not majority[i] for i in key)
    fn = sum(not key[i] and majority[i] for i in key)
    assert result["confusion"]["tp"] == tp and result["confusion"]["fp"] == fp
    assert abs(result["precision"] - tp / (tp + fp)) < 1e-12
    assert abs(result["recall"] - tp / (tp + fn)) < 1e-12
    assert result["simulated_annotators"] is True
    cfg = miniature_config["label_validation"]
    assert sum(key.values()) == cfg["medical_items"] and len(key) == cfg["medical_items"] + cfg["other_items"]
    # the sheets handed to annotators carry neither ids nor LLM labels
    with open(ann / "annotator-1.csv", newline="") as f:
        assert csv.DictReader(f).fieldnames == ["item", "text", "is_medical"]


def test_sample_comes_from_every_shard_without_duplicates(miniature, miniature_config):
    sample = pq.read_table(miniature / "results" / "labels" / "sample.parquet")
    shards = sorted((miniature / "data" / "fineweb2").glob("*.parquet"))
    assert len(shards) == miniature_config["fineweb"]["fixture"]["shards"]
    ids = sample.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == miniature_config["labelling"]["sample_size"]
    per_shard = [len(set(ids) & set(pq.read_table(s, columns=["id"]).column("id").to_pylist())) for s in shards]
    assert all(k > 0 for k in per_shard) and sum(per_shard) == len(ids)
    assert pa.types.is_string(sample.schema.field("text").type)
