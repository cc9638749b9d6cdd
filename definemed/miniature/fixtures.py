"""A seeded German web-text fixture in FineWeb2's parquet layout, for the miniature and the tests.

Documents are drawn from the topics of definemed/miniature/fixture_text.yaml: scientific medical text (which
states facts of MEDICAL_FACTS, so later benchmarks can ask about them), ordinary web text (which
states GENERAL_FACTS), and a small share of health-adjacent hard negatives (advertising, doctor
directories, popular press). A fact is stated only by documents of its own topic.
The ground truth (is the document high-quality medical text?) is written to a separate file that
only tests and reports read: the pipeline sees the shards alone, exactly as with FineWeb2.
"""

from __future__ import annotations

import dataclasses
import json
from typing import ClassVar

import numpy as np
import pyarrow as pa

from definemed.config import Settings
from definemed.dataset.fineweb import SCHEMA
from definemed.miniature import fixture_text as ft


@dataclasses.dataclass(frozen=True)
class FixtureSettings(Settings):
    """fineweb.fixture: the miniature's generated shards and their mix."""

    SECTION: ClassVar[str] = "fineweb.fixture"
    shards: int
    documents_per_shard: int
    medical_share: float
    hard_negative_share: float


MEDICAL = sorted(k for k, t in ft.TOPICS.items() if t["medical"])
HARD_NEGATIVE = ["wellness_werbung", "praxis_verzeichnis", "gesundheit_news"]
OTHER = sorted(k for k, t in ft.TOPICS.items() if not t["medical"] and k not in HARD_NEGATIVE)
FACTS_BY_TOPIC = {topic: [i for i, f in enumerate(ft.MEDICAL_FACTS) if f["topic"] == topic] for topic in MEDICAL}
GENERAL_FACTS_BY_TOPIC = {topic: [i for i, f in enumerate(ft.GENERAL_FACTS) if f["topic"] == topic] for topic in OTHER}
BOILERPLATE = [
    "Teilen Sie diesen Artikel mit Ihren Freunden.",
    "Diese Website verwendet Cookies, um Ihnen das beste Erlebnis zu bieten.",
    "Alle Angaben ohne Gewähr.",
    "Kommentare sind für diesen Beitrag geschlossen.",
    "Melden Sie sich für unseren Newsletter an und verpassen Sie keine Neuigkeiten mehr.",
]
DUMPS = ["CC-MAIN-2023-14", "CC-MAIN-2023-50", "CC-MAIN-2024-10", "CC-MAIN-2024-33"]
DOMAINS = ["de", "at", "ch"]
TRUTH_SCHEMA = pa.schema(
    [("id", pa.string()), ("is_medical", pa.bool_()), ("topic", pa.string()), ("facts", pa.list_(pa.int32()))]
)


def _fill(rng, sentence: str) -> str:
    return sentence.format(**{k: v[rng.integers(len(v))] for k, v in ft.SLOTS.items()})


def generate_document(rng: np.random.Generator, kind: str) -> dict:
    """One document of `kind` in {"medical", "other", "hard_negative"}."""
    pool = {"medical": MEDICAL, "other": OTHER, "hard_negative": HARD_NEGATIVE}[kind]
    topic = pool[rng.integers(len(pool))]
    spec = ft.TOPICS[topic]
    # Web documents: many short, a long tail of long ones.
    n_sentences = int(np.clip(rng.lognormal(mean=2.0, sigma=0.6), 2, 60))
    sentences = [_fill(rng, spec["sentences"][i]) for i in rng.integers(len(spec["sentences"]), size=n_sentences)]
    facts = []
    if kind == "medical" and FACTS_BY_TOPIC.get(topic):
        facts = _state_facts(rng, sentences, ft.MEDICAL_FACTS, FACTS_BY_TOPIC[topic])
    if kind == "other" and GENERAL_FACTS_BY_TOPIC.get(topic):
        _state_facts(rng, sentences, ft.GENERAL_FACTS, GENERAL_FACTS_BY_TOPIC[topic])
    if kind != "medical" and rng.random() < 0.3:
        sentences.append(BOILERPLATE[rng.integers(len(BOILERPLATE))])
    paragraphs, i = [], 0
    while i < len(sentences):
        step = int(rng.integers(2, 6))
        paragraphs.append(" ".join(sentences[i : i + step]))
        i += step
    title = _fill(rng, spec["titles"][rng.integers(len(spec["titles"]))])
    return {
        "text": title + "\n\n" + "\n\n".join(paragraphs),
        "topic": topic,
        "is_medical": kind == "medical",
        "facts": sorted(facts),
    }


def _state_facts(rng, sentences: list[str], facts: list[dict], candidates: list[int]) -> list[int]:
    """Insert one statement of each of 1-3 of `candidates` at random places; the facts stated."""
    stated = []
    for f in rng.choice(candidates, size=min(len(candidates), 1 + rng.integers(3)), replace=False):
        sentences.insert(int(rng.integers(len(sentences) + 1)), facts[f]["statements"][rng.integers(3)])
        stated.append(int(f))
    return stated


def generate_documents(
    seed, n: int, medical_share: float, hard_negative_share: float, stream: str = "shard", index: int = 0
) -> list[dict]:
    """`n` documents from the seed stream (`stream`, `index`): independent streams for shards, the
    tokenizer corpus and the labeller's fitting data, so none of them overlaps another."""
    key = [seed, sum(map(ord, stream)) * 1000 + len(stream), index]
    rng = np.random.default_rng(key)
    kinds = rng.choice(
        ["medical", "hard_negative", "other"],
        size=n,
        p=[medical_share, hard_negative_share, 1 - medical_share - hard_negative_share],
    )
    return [generate_document(rng, k) for k in kinds]


def fixture_shard(
    seed: int, shard_index: int, n: int, medical_share: float, hard_negative_share: float
) -> tuple[pa.Table, pa.Table]:
    """(shard table in FineWeb2's schema, ground-truth table) for one fixture shard."""
    docs = generate_documents(seed, n, medical_share, hard_negative_share, "shard", shard_index)
    rng = np.random.default_rng([seed, shard_index, 7])
    rows = {name: [] for name in SCHEMA.names}
    truth = {name: [] for name in TRUTH_SCHEMA.names}
    for j, doc in enumerate(docs):
        rand = int(rng.integers(1 << 40))
        uid = f"<urn:uuid:{shard_index:08x}-{j % 65536:04x}-4{seed % 4096:03x}-8{j % 4096:03x}-{rand:012x}>"
        dump = DUMPS[rng.integers(len(DUMPS))]
        score = float(np.round(0.9 + 0.1 * rng.random(), 6))
        rows["text"].append(doc["text"])
        rows["id"].append(uid)
        rows["dump"].append(dump)
        rows["url"].append(
            f"https://www.{doc['topic'].replace('_', '-')}-{j % 97}.{DOMAINS[j % 3]}/artikel/{shard_index}-{j}"
        )
        rows["date"].append(f"{dump[8:12]}-0{1 + j % 9}-{10 + j % 18}T12:00:00Z")
        rows["file_path"].append(f"s3://commoncrawl/crawl-data/{dump}/segments/fixture/{shard_index}.warc.gz")
        rows["language"].append("deu")
        rows["language_score"].append(score)
        rows["language_script"].append("Latn")
        rows["minhash_cluster_size"].append(int(1 + rng.poisson(1.0)))
        rows["top_langs"].append(json.dumps({"deu_Latn_score": score}))
        truth["id"].append(uid)
        truth["is_medical"].append(doc["is_medical"])
        truth["topic"].append(doc["topic"])
        truth["facts"].append(doc["facts"])
    return pa.table(rows, schema=SCHEMA), pa.table(truth, schema=TRUTH_SCHEMA)


def read_truth(paths) -> dict[str, bool]:
    """document id -> is it high-quality medical text, from the fixture's ground-truth files."""
    import pyarrow.parquet as pq

    truth = pa.concat_tables(pq.read_table(p, columns=["id", "is_medical"]) for p in paths)
    return dict(zip(truth.column("id").to_pylist(), truth.column("is_medical").to_pylist()))
