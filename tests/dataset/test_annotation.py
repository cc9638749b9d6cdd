"""Label validation (Table 5): metrics by hand, blinded sheets, and clear errors for bad sheets."""

import csv

import pyarrow as pa
import pytest

from definemed.dataset.annotation import (
    read_annotations,
    select_items,
    simulate_annotator,
    validation_metrics,
    write_annotation_sheets,
)


def test_metrics_match_a_hand_computed_case():
    # items x 3 annotators: majority = 1, 1, 1, 0; LLM = 1, 0, 1, 1
    ratings = {"a": (1, 1, 1), "b": (1, 1, 1), "c": (1, 1, 0), "d": (0, 0, 0)}
    sheets = [{i: r[k] for i, r in ratings.items()} for k in range(3)]
    m = validation_metrics({"a": 1, "b": 0, "c": 1, "d": 1}, sheets)
    assert m["confusion"] == {"tp": 2, "fp": 1, "fn": 1, "tn": 0}
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(0.5)
    # P_bar = 5/6; Fleiss: P_e = (2/3)^2 + (1/3)^2 = 5/9 -> 5/8; Randolph: P_e = 1/2 -> 2/3
    assert m["fleiss_kappa"] == pytest.approx(5 / 8)
    assert m["randolph_kappa"] == pytest.approx(2 / 3)


def test_sheets_are_blinded_and_key_is_separate(tmp_path):
    labels = pa.table({"id": [f"d{i}" for i in range(20)], "label": [i % 2 for i in range(20)]})
    texts = pa.table({"id": [f"d{i}" for i in range(20)], "text": [f"text {i}" for i in range(20)]})
    items = select_items(labels, texts, medical=4, other=3, seed=1)
    assert items.num_rows == 7 and sum(items.column("llm_label").to_pylist()) == 4
    paths = write_annotation_sheets(items, tmp_path, annotators=3)
    assert [p.name for p in paths] == ["annotator-1.csv", "annotator-2.csv", "annotator-3.csv"]
    with open(paths[0], newline="") as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == {"item", "text", "is_medical"}  # no id, no LLM label
    assert all(r["is_medical"] == "" for r in rows)
    with open(tmp_path / "key.csv", newline="") as f:
        key = list(csv.DictReader(f))
    assert [k["item"] for k in key] == [r["item"] for r in rows]
    with pytest.raises(ValueError, match="only 10 of that class"):
        select_items(labels, texts, medical=11, other=1, seed=1)


def test_bad_sheet_names_file_and_row(tmp_path):
    sheet = tmp_path / "annotator-2.csv"
    sheet.write_text("item,text,is_medical\nitem-0001,x,yes\nitem-0002,y,vielleicht\n")
    with pytest.raises(ValueError, match=r"annotator-2.csv: row 3 \(item item-0002\).*'vielleicht'"):
        read_annotations(sheet, ["item-0001", "item-0002"])
    sheet.write_text("item,text,is_medical\nitem-0001,x,ja\n")
    with pytest.raises(ValueError, match=r"annotator-2.csv: 1 item\(s\) not annotated"):
        read_annotations(sheet, ["item-0001", "item-0002"])
    assert read_annotations(sheet, ["item-0001"]) == {"item-0001": 1}


def test_simulated_annotator_errs_at_its_rate():
    truth = {f"i{k}": k % 3 == 0 for k in range(4000)}
    answers = simulate_annotator(truth, list(truth), error_rate=0.1, seed=3)
    wrong = sum(answers[i] != int(truth[i]) for i in truth) / len(truth)
    assert 0.08 < wrong < 0.12
