"""The text material of the seeded German web-text fixture corpus, read from
definemed/miniature/fixture_text.yaml (what each part is: that file's header).

SLOTS fills the placeholders of titles and sentences, TOPICS are the corpus's topics (medical,
ordinary web text, health-adjacent hard negatives), MEDICAL_FACTS the textbook facts that only
medical documents state and GENERAL_FACTS the everyday facts that only ordinary web text states:
the fixture benchmarks ask about both, so what a model learns from which text is measurable.
Read once, at import; a malformed file stops with its key named.
"""

from __future__ import annotations

from pathlib import Path

import yaml

DATA_FILE = Path(__file__).parent / "fixture_text.yaml"
TOPIC_KEYS = {"medical", "style", "titles", "sentences"}
FACT_KEYS = {"area", "topic", "question", "answer", "distractors", "statements"}


def _strings(value, where: str) -> list[str]:
    # YAML reads an unquoted 2024 as a number and `ja`/`no` as booleans: insist on strings.
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ValueError(f"{where} must be a list of strings (quote numbers and yes/no)")
    return value


def _check_keys(entry, expected: set[str], where: str) -> None:
    if not isinstance(entry, dict) or set(entry) != expected:
        found = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise ValueError(f"{where} must have exactly the keys {sorted(expected)}, found {found}")


def load(path: Path = DATA_FILE) -> tuple[dict[str, list[str]], dict[str, dict], list[dict], list[dict]]:
    """(slots, topics, medical_facts, general_facts) from the data file, checked, in the file's order."""
    with open(path, encoding="utf-8") as f:
        data = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: 10x faster
    try:
        return _checked(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def _checked(data) -> tuple[dict[str, list[str]], dict[str, dict], list[dict], list[dict]]:
    _check_keys(data, {"slots", "topics", "medical_facts", "general_facts"}, "the top level")
    slots = {name: _strings(values, f"slots.{name}") for name, values in data["slots"].items()}
    for name, topic in data["topics"].items():
        _check_keys(topic, TOPIC_KEYS, f"topics.{name}")
        if not isinstance(topic["medical"], bool) or not isinstance(topic["style"], str):
            raise ValueError(f"topics.{name}: medical must be true/false and style a string")
        _strings(topic["titles"], f"topics.{name}.titles")
        _strings(topic["sentences"], f"topics.{name}.sentences")
    for key, medical in (("medical_facts", True), ("general_facts", False)):
        for i, fact in enumerate(data[key]):
            _check_fact(fact, f"{key}[{i}]", data["topics"], medical)
    return slots, data["topics"], data["medical_facts"], data["general_facts"]


def _check_fact(fact, where: str, topics: dict, medical: bool) -> None:
    _check_keys(fact, FACT_KEYS, where)
    _strings([fact[k] for k in ("area", "topic", "question", "answer")], where)
    if fact["topic"] not in topics:
        raise ValueError(f"{where}.topic {fact['topic']!r} is not a topic")
    if topics[fact["topic"]]["medical"] != medical:
        kind = "a medical" if medical else "a non-medical"
        raise ValueError(f"{where}.topic {fact['topic']!r} is not {kind} topic")
    if len(_strings(fact["distractors"], f"{where}.distractors")) != 3:
        raise ValueError(f"{where}.distractors must hold 3 wrong answers")
    statements = _strings(fact["statements"], f"{where}.statements")
    if len(statements) != 3:
        raise ValueError(f"{where}.statements must hold 3 statements")
    # the benchmarks ask the question: the corpus states the fact, never the question itself
    if any(fact["question"] in s for s in statements) or not all(fact["answer"] in s for s in statements):
        raise ValueError(f"{where}: every statement must contain the answer verbatim and none the question")


SLOTS, TOPICS, MEDICAL_FACTS, GENERAL_FACTS = load()
