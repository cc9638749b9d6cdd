"""The German fixture corpus: FineWeb2's schema, seeded, varied, with hidden ground truth."""

import pyarrow.parquet as pq

from definemed.dataset.fineweb import SCHEMA
from definemed.miniature import fixture_text as ft
from definemed.miniature.fixtures import fixture_shard, generate_documents


def test_shard_has_fineweb2_schema_and_separate_truth():
    shard, truth = fixture_shard(seed=1, shard_index=0, n=300, medical_share=0.3, hard_negative_share=0.05)
    assert shard.schema.equals(SCHEMA)
    assert "is_medical" not in shard.column_names and "topic" not in shard.column_names
    assert shard.column("id").to_pylist() == truth.column("id").to_pylist()
    assert len(set(shard.column("id").to_pylist())) == 300
    share = sum(truth.column("is_medical").to_pylist()) / 300
    assert 0.2 < share < 0.4


def test_shards_are_seeded_and_distinct():
    a, _ = fixture_shard(1, 0, 50, 0.3, 0.05)
    b, _ = fixture_shard(1, 0, 50, 0.3, 0.05)
    c, _ = fixture_shard(1, 1, 50, 0.3, 0.05)
    assert a.equals(b)
    assert not set(a.column("id").to_pylist()) & set(c.column("id").to_pylist())
    assert a.column("text").to_pylist() != c.column("text").to_pylist()


def test_documents_are_varied_german_text():
    docs = generate_documents(3, 1000, 0.3, 0.05)
    words = {w.strip(".,;:!?()\"'").lower() for d in docs for w in d["text"].split()}
    assert len(words) > 2000
    lengths = sorted(len(d["text"].split()) for d in docs)
    assert lengths[50] < 80 < lengths[-50]  # short and long documents
    topics = {d["topic"] for d in docs}
    assert len(topics & {k for k, t in ft.TOPICS.items() if t["medical"]}) >= 8
    assert len(topics - {k for k, t in ft.TOPICS.items() if t["medical"]}) >= 8
    assert any(c in d["text"] for d in docs for c in "äöüß")
    # medical documents state facts that later benchmarks ask about
    fact_docs = [d for d in docs if d["facts"]]
    assert fact_docs and all(d["is_medical"] for d in fact_docs)
    d = fact_docs[0]
    assert any(s in d["text"] for s in ft.MEDICAL_FACTS[d["facts"][0]]["statements"])


def test_fixture_shard_written_by_script_reads_back(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    out, truth = tmp_path / "s.parquet", tmp_path / "t.parquet"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "make_fixture_shard.py"),
            "--seed",
            "4",
            "--index",
            "2",
            "--documents",
            "40",
            "--out",
            str(out),
            "--truth",
            str(truth),
        ],
        check=True,
        capture_output=True,
    )
    assert pq.read_table(out).equals(fixture_shard(4, 2, 40, 0.3, 0.05)[0])


def test_fixture_text_data_file_rejects_a_value_yaml_reads_as_a_number(tmp_path):
    import pytest

    from definemed.miniature.fixture_text import DATA_FILE, load

    slots, topics, facts, general = load()
    assert len(topics) >= 16 and facts and general and all(isinstance(v, str) for vs in slots.values() for v in vs)
    bad = tmp_path / "fixture_text.yaml"
    bad.write_text(DATA_FILE.read_text(encoding="utf-8").replace("- '2024'", "- 2024", 1), encoding="utf-8")
    with pytest.raises(ValueError, match=r"slots\.jahr must be a list of strings"):
        load(bad)


def test_fixture_facts_are_stated_only_by_their_kind_of_text(tmp_path):
    """Medical facts only in medical documents, general facts only in ordinary web text, and a fact
    whose statement lacks its answer, or states its question, or sits under the wrong kind of topic
    is refused with its entry named."""
    import pytest

    from definemed.miniature import fixture_text as ft
    from definemed.miniature.fixtures import generate_documents

    docs = generate_documents(5, 600, 0.3, 0.05)
    for kind, facts, medical in (("medical", ft.MEDICAL_FACTS, True), ("general", ft.GENERAL_FACTS, False)):
        statements = {s for f in facts for s in f["statements"]}
        stating = [d for d in docs if any(s in d["text"] for s in statements)]
        assert stating, kind
        assert all(d["is_medical"] == medical and (medical or d["topic"] in ft.TOPICS) for d in stating), kind
        assert all(ft.TOPICS[d["topic"]]["medical"] == medical for d in stating), kind
    text = ft.DATA_FILE.read_text(encoding="utf-8")
    first = ft.GENERAL_FACTS[0]
    for old, new, match in [
        (
            f"topic: {first['topic']}",
            "topic: kardiologie",
            r"general_facts\[0\]\.topic 'kardiologie' is not a non-medical",
        ),
        (first["statements"][1], first["question"], r"general_facts\[0\]: every statement must contain the answer"),
    ]:
        bad = tmp_path / "fixture_text.yaml"
        general_at = text.index("general_facts:")
        bad.write_text(text[:general_at] + text[general_at:].replace(old, new, 1), encoding="utf-8")
        with pytest.raises(ValueError, match=match):
            ft.load(bad)
