"""The judge calls of a run (paper 5.2, 5.3), built from the queries and the models' generations,
and the judges' answers read back as result rows.

Pairwise: every pair of models is judged on every query, by default in both presentation orders
(the paper does not say; both orders control the judge's position bias). A verdict names the
winning model, a tie, or nothing (failed call or schema-invalid answer: counted as invalid).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from definemed.config import Settings
from definemed.evaluation.medqa import TRANSLATION_SCHEMA as MEDQA_TRANSLATION_SCHEMA
from definemed.io import read_jsonl
from definemed.judges.client import JudgeRequest, JudgeSettings
from definemed.judges.prompts import (
    MODE_NAMES,
    PAIRWISE_SCHEMA,
    TRANSLATION_SCHEMA,
    failure_mode_schema,
    messages,
    parse_answer,
)


@dataclass(frozen=True)
class JudgeStageSettings(Settings):
    """A stage of judge calls ($defs.judge_stage: the failure modes, either translation): its judge
    and the answer tokens per call its cost estimate assumes."""

    SECTION = "$defs.judge_stage"
    judge: JudgeSettings
    output_tokens: int


@dataclass(frozen=True)
class PairwiseSettings(Settings):
    """The pairwise stage (judges.pairwise): a judge stage that may judge each pair in both
    presentation orders."""

    SECTION = "judges.pairwise"
    judge: JudgeSettings
    output_tokens: int
    both_orders: bool


def model_pairs(models: list[str]) -> list[tuple[str, str]]:
    return list(itertools.combinations(models, 2))


def pairwise_requests(queries: list[dict], generations: dict[str, dict], models: list[str], both_orders: bool):
    """One request per (pair, query, order). generations: {model: {query_id: response}}."""
    out = []
    for first, second in model_pairs(models):
        orders = [(first, second), (second, first)] if both_orders else [(first, second)]
        for q in queries:
            for a, b in orders:
                out.append(
                    JudgeRequest(
                        custom_id=f"{first}|{second}|{q['id']}|{a}",
                        messages=messages(
                            "pairwise",
                            context=q.get("context", ""),
                            query=q["query"],
                            response_a=generations[a][q["id"]],
                            response_b=generations[b][q["id"]],
                        ),
                        schema_name="pairwise_verdict",
                        schema=PAIRWISE_SCHEMA,
                        meta={"pair": [first, second], "query_id": q["id"], "model_a": a, "model_b": b},
                    )
                )
    return out


def failure_mode_requests(queries: list[dict], generations: dict[str, dict], models: list[str]):
    out = []
    for m in models:
        for q in queries:
            out.append(
                JudgeRequest(
                    custom_id=f"{m}|{q['id']}",
                    messages=messages(
                        "failure_modes",
                        context=q.get("context", ""),
                        query=q["query"],
                        response=generations[m][q["id"]],
                    ),
                    schema_name="failure_modes",
                    schema=failure_mode_schema(),
                    meta={"model": m, "query_id": q["id"]},
                )
            )
    return out


def translation_requests(rows: list[dict]):
    return [
        JudgeRequest(
            custom_id=str(r["id"]),
            messages=messages("translation", question=r["question"], answer=r["answer"]),
            schema_name="translation",
            schema=TRANSLATION_SCHEMA,
            meta={"id": r["id"]},
        )
        for r in rows
    ]


def medqa_translation_requests(rows: list[dict]):
    """MedQA rows (sent1, ending0-3) to translate into German (medqa_de.source: translate)."""
    return [
        JudgeRequest(
            custom_id=r["id"],
            messages=messages("translation_medqa", question=r["sent1"], options=[r[f"ending{i}"] for i in range(4)]),
            schema_name="medqa_translation",
            schema=MEDQA_TRANSLATION_SCHEMA,
        )
        for r in rows
    ]


def verdict_row(req: JudgeRequest, record: dict, judge: str) -> dict:
    answer, error = parse_answer(record, PAIRWISE_SCHEMA)
    m = req.meta
    winner = None
    if answer is not None:
        winner = {"A": m["model_a"], "B": m["model_b"], "0": "tie"}[answer["winner"]]
    return {
        "pair": m["pair"],
        "query_id": m["query_id"],
        "model_a": m["model_a"],
        "model_b": m["model_b"],
        "status": "valid" if answer is not None else error.split(":")[0],
        "winner_label": answer["winner"] if answer else None,
        "winner": winner,
        "reasoning": answer["reasoning"] if answer else None,
        "error": error,
        "raw": None if answer is not None else record.get("content"),
        "judge": judge,
        "usage": record.get("usage") or {},
        "request_key": record["key"],
    }


def failure_mode_row(req: JudgeRequest, record: dict, judge: str) -> dict:
    answer, error = parse_answer(record, failure_mode_schema())
    return {
        "model": req.meta["model"],
        "query_id": req.meta["query_id"],
        "status": "valid" if answer is not None else error.split(":")[0],
        "modes": {m: bool(answer[m]) for m in MODE_NAMES} if answer else None,
        "error": error,
        "raw": None if answer is not None else record.get("content"),
        "judge": judge,
        "usage": record.get("usage") or {},
        "request_key": record["key"],
    }


def load_generations(paths) -> dict[str, dict[str, str]]:
    """{model: {query_id: response}} from generation JSONL files."""
    out: dict[str, dict[str, str]] = {}
    for path in paths:
        for row in read_jsonl(path):
            out.setdefault(row["model"], {})[row["id"]] = row["response"]
    return out


def generation_weights(paths) -> dict[str, str]:
    """{model: content hash of the weights that wrote its responses} from generation JSONL files:
    judge results name the weights they judged (definemed.model_facts.weights_sha256)."""
    out: dict[str, set] = {}
    for path in paths:
        for row in read_jsonl(path):
            out.setdefault(row["model"], set()).add(row["model_weights_sha256"])
    for model, hashes in out.items():
        if len(hashes) != 1:
            raise ValueError(f"generations of {model}: responses from {len(hashes)} different weights")
    return {model: hashes.pop() for model, hashes in sorted(out.items())}
