"""Threshold choice, length-sorted batching, and the miniature's classifier and FineMed."""

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from definemed.dataset.classifier import Scorer, choose_threshold, score_shard, threshold_curve
from definemed.io import read_jsonl


def test_min_precision_rule_picks_the_smallest_threshold_reaching_the_target():
    labels = np.array([0, 0, 1, 0, 1, 1, 1])
    scores = np.array([0.1, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    chosen = choose_threshold({"rule": "min_precision", "precision": 0.75}, labels, scores)
    # at 0.4: 4 of 5 predicted are medical (0.8); at 0.3: 4 of 6 (0.67)
    assert chosen["threshold"] == pytest.approx(0.4)
    assert chosen["validation_precision"] == pytest.approx(0.8)
    assert choose_threshold({"rule": "fixed", "value": 0.9}) == {"rule": "fixed", "threshold": 0.9}
    with pytest.raises(ValueError, match="no threshold reaches"):
        choose_threshold({"rule": "min_precision", "precision": 1.0}, np.array([0, 1]), np.array([0.9, 0.8]))


def test_threshold_curve_is_monotone_in_recall():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = np.clip(labels * 0.5 + rng.random(500) * 0.6, 0, 1)
    curve = threshold_curve(labels, scores)
    assert len(curve["threshold"]) == 101 and curve["recall"][0] == 1.0
    assert all(a >= b for a, b in zip(curve["recall"], curve["recall"][1:]))
    called = scores >= 0.5  # counted here: documents at or above the threshold are called medical
    assert curve["threshold"][50] == 0.5
    assert curve["precision"][50] == pytest.approx((called & (labels == 1)).sum() / called.sum())
    assert curve["recall"][50] == pytest.approx((called & (labels == 1)).sum() / (labels == 1).sum())


def test_batches_respect_the_token_budget_and_sorting_cuts_padding(tiny_model):
    scorer = Scorer(tiny_model("tiny-xlm-roberta"), max_length=256, max_tokens_per_batch=2048)
    lengths = np.random.default_rng(1).integers(5, 256, 400)
    for sort in (True, False):
        batches = scorer.batches(lengths, sort)
        assert sorted(np.concatenate(batches).tolist()) == list(range(400))
        assert all(len(b) * lengths[b].max() <= 2048 for b in batches)
    padded = {s: sum(len(b) * lengths[b].max() for b in scorer.batches(lengths, s)) for s in (True, False)}
    assert padded[True] < 0.75 * padded[False]


def test_streamed_shard_scores_equal_whole_batch_scores(tiny_model, tmp_path):
    from definemed.miniature.fixtures import fixture_shard

    small = tmp_path / "shard.parquet"
    pq.write_table(fixture_shard(3, 0, 120, 0.3, 0.05)[0], small, row_group_size=50)
    scorer = Scorer(tiny_model("tiny-xlm-roberta"), max_length=256, max_tokens_per_batch=4096)
    streamed = score_shard(scorer, small, read_documents=33)
    direct = scorer.score(pq.read_table(small).column("text").to_pylist())
    assert streamed.column("id").to_pylist() == pq.read_table(small).column("id").to_pylist()
    np.testing.assert_allclose(streamed.column("score").to_numpy(), direct, atol=1e-5)


def test_miniature_classifier_and_finemed(miniature, miniature_config):
    cls = miniature / "results" / "classifier"
    metrics = json.loads((cls / "metrics.json").read_text())
    curve = json.loads((cls / "threshold_curve.json").read_text())
    settings = miniature_config["classifier"]
    threshold = settings["threshold"]["value"]
    # precision and recall at the threshold, recomputed here: each test document through the
    # fine-tuned model on its own (no batching), P(medical) from the logits, counted by hand
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    test = pq.read_table(miniature / "results" / "labels" / "test.parquet")
    tok = AutoTokenizer.from_pretrained(cls / "model")
    model = AutoModelForSequenceClassification.from_pretrained(cls / "model").eval()
    p = []
    with torch.no_grad():
        for text in test.column("text").to_pylist():
            ids = tok(text, truncation=True, max_length=settings["max_length"], return_tensors="pt")
            p.append(torch.softmax(model(**ids).logits, -1)[0, 1].item())
    labels = test.column("label").to_pylist()
    tp = sum(1 for x, y in zip(p, labels) if x >= threshold and y == 1)
    called = sum(1 for x in p if x >= threshold)
    assert metrics["documents"] == len(labels) and metrics["threshold"] == threshold
    assert metrics["precision"] == pytest.approx(tp / called, abs=1e-9)
    assert metrics["recall"] == pytest.approx(tp / sum(labels), abs=1e-9)
    k = curve["threshold"].index(round(threshold, 6))
    assert (curve["precision"][k], curve["recall"][k]) == pytest.approx((tp / called, tp / sum(labels)))
    assert read_jsonl(cls / "training_log.jsonl")

    # FineMed against the fixture's ground truth (read here, never by the pipeline)
    truth = pa.concat_tables(pq.read_table(p) for p in sorted((miniature / "data" / "fixture_truth").glob("*")))
    medical = {i for i, m in zip(truth.column("id").to_pylist(), truth.column("is_medical").to_pylist()) if m}
    parts = sorted((miniature / "results" / "finemed").glob("train-*.parquet"))
    kept = pa.concat_tables(pq.read_table(p) for p in parts)
    ids = set(kept.column("id").to_pylist())
    assert 0 < len(ids) < truth.num_rows
    assert ids <= set(truth.column("id").to_pylist())
    precision = len(ids & medical) / len(ids)
    assert precision >= 0.9
    assert min(kept.column("score").to_pylist()) >= metrics["threshold"]
    stats = json.loads((miniature / "results" / "finemed" / "statistics.json").read_text())
    assert stats["FineMed-de"]["documents"] == len(ids)
    assert stats["FineMed-de"]["words"] == sum(len(t.split()) for t in kept.column("text").to_pylist())
    assert stats["FineWeb2-de"]["documents"] == truth.num_rows


def test_a_classifier_that_never_calls_a_document_medical_is_an_error(tiny_model, tmp_path):
    """Early stopping on a flat F-beta of 0 would hand every later stage an empty FineMed."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from definemed.dataset.classifier import ClassifierSettings, train_classifier

    src = tiny_model("tiny-xlm-roberta")
    model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=2)
    with torch.no_grad():  # a head that calls nothing medical, and a learning rate that keeps it so
        model.classifier.out_proj.bias.copy_(torch.tensor([10.0, -10.0]))
    model.save_pretrained(tmp_path / "base")
    AutoTokenizer.from_pretrained(src).save_pretrained(tmp_path / "base")
    table = pa.table({"id": [f"d{i}" for i in range(40)], "text": ["Ein Text."] * 40, "label": [0, 1] * 20})
    settings = ClassifierSettings.from_config(
        {
            "model": "tiny-xlm-roberta",
            "max_length": 16,
            "epochs": 1,
            "batch_size": 8,
            "learning_rate": 1e-3,
            "weight_decay": 0.0,
            "validation_fraction": 0.25,
            "fbeta": 0.5,
            "eval_steps": 1,
            "early_stopping_patience": 1,
            "threshold": {"rule": "min_precision", "precision": 0.9},  # checkpoints compared at 0.5
        }
    )
    settings = dataclasses.replace(settings, learning_rate=0.0)  # past the schema's check: the head must not move
    with pytest.raises(ValueError, match="validation F-beta at threshold 0.5 stayed 0 for 2 steps"):
        train_classifier(table, settings, tmp_path / "base", tmp_path / "out", tmp_path / "work", seed=0)
    assert not (tmp_path / "out").exists()
