"""Fixture benchmarks for the miniature, in the column layouts of the datasets lm-eval's shipped
tasks read, so the shipped prompts, subject filters and metrics run on them unchanged.

Medical items ask about the facts only the fixture's medical documents state (definemed.miniature.fixture_text.
MEDICAL_FACTS: question, answer, three distractors); the general subjects of German MMMLU ask about
the facts only ordinary web text states (GENERAL_FACTS); ARC and HellaSwag items complete sentences
of ordinary web text; GSM8k items are seeded arithmetic word problems. The corpus states each fact,
never its question. Gold positions are balanced: each letter is gold for a quarter of a file's items
(up to one), in a seeded order.
"""

from __future__ import annotations

import numpy as np

from definemed.miniature import fixture_text as ft
from definemed.miniature.fixtures import OTHER, _fill

LETTERS = "ABCD"
MMMLU_AREAS = ("anatomy", "clinical_knowledge", "college_medicine")
LAYOUTS = ("mmmlu", "medqa", "mmlu", "arc", "hellaswag", "gsm8k")
# MMLU's 57 subjects, as OpenAI's MMMLU names them in its Subject column (lm-eval's
# openai-mmmlu/subjects.json; tests/evaluation/test_benchmarks.py holds the two equal)
MMLU_SUBJECTS = (
    "abstract_algebra anatomy astronomy business_ethics clinical_knowledge college_biology college_chemistry"
    " college_computer_science college_mathematics college_medicine college_physics computer_security"
    " conceptual_physics econometrics electrical_engineering elementary_mathematics formal_logic global_facts"
    " high_school_biology high_school_chemistry high_school_computer_science high_school_european_history"
    " high_school_geography high_school_government_and_politics high_school_macroeconomics high_school_mathematics"
    " high_school_microeconomics high_school_physics high_school_psychology high_school_statistics"
    " high_school_us_history high_school_world_history human_aging human_sexuality international_law jurisprudence"
    " logical_fallacies machine_learning management marketing medical_genetics miscellaneous moral_disputes"
    " moral_scenarios nutrition philosophy prehistory professional_accounting professional_law"
    " professional_medicine professional_psychology public_relations security_studies sociology us_foreign_policy"
    " virology world_religions"
).split()
ALL_SUBJECTS = "all"


def balanced_golds(rng, n: int) -> list[int]:
    """Gold positions for `n` items: every position equally often (up to one), in a seeded order,
    so that a model answering one constant position scores a quarter."""
    return [int(g) for g in rng.permutation(np.arange(n) % 4)]


def _options(rng, answer: str, distractors: list[str], gold: int) -> tuple[list[str], int]:
    wrong = [distractors[i] for i in rng.permutation(3)]
    return [*wrong[:gold], answer, *wrong[gold:]], gold


def _sentences(rng, count: int) -> list[tuple[str, str]]:
    """`count` distinct (topic, raw sentence) pairs from the non-medical topics."""
    pairs = [(t, s) for t in OTHER for s in ft.TOPICS[t]["sentences"]]
    return [pairs[i] for i in rng.choice(len(pairs), size=min(count, len(pairs)), replace=False)]


def _split(sentence: str) -> tuple[str, str]:
    words = sentence.split()
    cut = max(2, int(len(words) * 0.55))
    return " ".join(words[:cut]), " ".join(words[cut:])


def fixture_items(layout: str, seed: int, area: str | None = None, count: int = 24, hard: bool = False) -> list[dict]:
    """Rows of one fixture benchmark. `area` picks MEDICAL_FACTS for the medical layouts (mmmlu with
    area "all": every MMLU subject, `count` items per medical one); `hard` draws ARC distractors
    from the same topic (ARC-Challenge) instead of other topics (ARC-Easy)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown fixture layout {layout!r}; one of {LAYOUTS}")
    rng = np.random.default_rng([seed, LAYOUTS.index(layout), int(hard), sum(map(ord, area or ""))])
    if layout == "mmmlu" and area == ALL_SUBJECTS:
        return _mmmlu_all_subjects(rng, count)
    if layout in ("mmmlu", "medqa"):
        if not any(f["area"] == area for f in ft.MEDICAL_FACTS):
            raise ValueError(f"no fixture medical facts with area {area!r}")
        # MMMLU's DE_DE file holds every subject and lm-eval's shipped filter picks one: so does
        # the fixture, and the item count check proves the filter ran
        facts = [f for f in ft.MEDICAL_FACTS if f["area"] == area or (layout == "mmmlu" and f["area"] in MMMLU_AREAS)]
        rows = []
        golds = balanced_golds(rng, len(facts))
        for i, fact in enumerate(facts):
            options, gold = _options(rng, fact["answer"], fact["distractors"], golds[i])
            if layout == "mmmlu":
                rows.append({"Question": fact["question"], **dict(zip(LETTERS, options)), "Answer": LETTERS[gold],
                             "Subject": fact["area"]})  # fmt: skip
            else:
                rows.append({"id": f"fixture-medqa-{i}", "sent1": fact["question"], "sent2": "",
                             **{f"ending{j}": o for j, o in enumerate(options)}, "label": gold})  # fmt: skip
        return rows
    return _general_items(rng, layout, count, hard)


def _mmmlu_all_subjects(rng, per_medical_subject: int) -> list[dict]:
    """German MMMLU in miniature: one file, every subject (lm-eval's 57 subject filters each find
    theirs). The general subjects ask the general facts, dealt round-robin over them in the file's
    order; the three medical subjects `per_medical_subject` seeded medical facts each, so that the
    column stays general as MMLU is (3 of 57 subjects medical)."""
    general = [s for s in MMLU_SUBJECTS if s not in MMMLU_AREAS]
    if not ft.GENERAL_FACTS:
        raise ValueError("German MMMLU's general subjects need general_facts in definemed/miniature/fixture_text.yaml")
    items = [(general[i % len(general)], fact) for i, fact in enumerate(ft.GENERAL_FACTS)]
    for subject in MMMLU_AREAS:
        facts = [f for f in ft.MEDICAL_FACTS if f["area"] == subject]
        picked = rng.choice(len(facts), size=min(per_medical_subject, len(facts)), replace=False)
        items += [(subject, facts[i]) for i in sorted(picked)]
    items.sort(key=lambda item: MMLU_SUBJECTS.index(item[0]))  # stable: facts keep their order per subject
    golds = balanced_golds(rng, len(items))
    rows = []
    for (subject, fact), gold in zip(items, golds):
        options, gold = _options(rng, fact["answer"], fact["distractors"], gold)
        rows.append({"Question": fact["question"], **dict(zip(LETTERS, options)), "Answer": LETTERS[gold],
                     "Subject": subject})  # fmt: skip
    return rows


def _text_kind_question(rng, topic: str, sentence: str, gold: int) -> tuple[str, list[str], int]:
    others = [t for t in OTHER if t != topic]
    wrong = [others[j] for j in rng.choice(len(others), size=3, replace=False)]
    options, gold = _options(rng, ft.TOPICS[topic]["style"], [ft.TOPICS[t]["style"] for t in wrong], gold)
    return f"Aus welcher Art von Text stammt dieser Satz? „{sentence}“", options, gold


def _general_items(rng, layout: str, count: int, hard: bool) -> list[dict]:
    if layout == "gsm8k":
        rows = []
        for _ in range(count):
            a, b, c = (int(x) for x in rng.integers(2, 12, size=3))
            name = ft.SLOTS["name"][rng.integers(len(ft.SLOTS["name"]))]
            rows.append(
                {
                    "question": f"{name} kauft {a} Hefte zu je {b} Euro und ein Buch für {c} Euro. "
                    "Wie viele Euro bezahlt die Person insgesamt?",
                    "answer": f"{a} * {b} = {a * b}, {a * b} + {c} = {a * b + c}\n#### {a * b + c}",
                }
            )
        return rows
    rows = []
    pairs = _sentences(rng, count)
    golds = balanced_golds(rng, len(pairs))
    for i, (topic, raw) in enumerate(pairs):
        sentence = _fill(rng, raw)
        if layout == "mmlu":
            question, options, gold = _text_kind_question(rng, topic, sentence, golds[i])
            rows.append({"question": question, "subject": "global_facts", "choices": options, "answer": gold})
            continue
        context, ending = _split(sentence)
        # ARC-Challenge-like: endings of the same topic; ARC-Easy/HellaSwag-like: other topics
        pool = [s for t in OTHER if (t == topic) == hard for s in ft.TOPICS[t]["sentences"] if s != raw]
        wrong = [_split(_fill(rng, pool[j]))[1] for j in rng.choice(len(pool), size=3, replace=False)]
        options, gold = _options(rng, ending, wrong, golds[i])
        if layout == "arc":
            rows.append({"id": f"fixture-arc-{i}", "question": context,
                         "choices": {"text": options, "label": list(LETTERS)}, "answerKey": LETTERS[gold]})  # fmt: skip
        else:  # hellaswag
            rows.append({"ind": i, "activity_label": ft.TOPICS[topic]["style"].split(",")[0], "ctx_a": context,
                         "ctx_b": "", "ctx": context, "endings": options, "source_id": f"fixture-{topic}",
                         "split": "val", "split_type": "indomain", "label": str(gold)})  # fmt: skip
    return rows


def fixture_queries() -> list[dict]:
    """The judges' queries of the miniature (in place of MedAlpaca-de): German questions of the
    fixture's medical facts, as a user would supply them (context = the reference answer)."""
    return [
        {"id": f"fixture-{i:03d}", "query": f["question"], "context": f["statements"][0], "area": f["area"]}
        for i, f in enumerate(ft.MEDICAL_FACTS)
    ]
