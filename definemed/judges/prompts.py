"""The judges' prompts and answer schemas (paper A.7): the A.7 prompts as Jinja2 templates under
prompts/, the pairwise and failure-mode JSON schemas, and the check of an answer against its schema.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jinja2
import jsonschema

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"

# A.7.2, verbatim.
PAIRWISE_SCHEMA = {
    "type": "object",
    "properties": {
        "reasoning": {
            "type": "string",
            "description": "Detailed explanation of why this decision was made, analyzing the quality and "
            "characteristics of both responses.",
        },
        "winner": {
            "type": "string",
            "enum": ["A", "B", "0"],
            "description": "The winning response, i.e. 'A', 'B' or '0' indicating a tie.",
        },
    },
    "required": ["reasoning", "winner"],
}

# A.7.3's required list (the schema's order) with Table 10's descriptions. Table 10 does not
# describe irrelevance, instruction_ignoring and bias_or_harm: their descriptions are ours.
# fmt: off
FAILURE_MODES: list[tuple[str, str, str]] = [
    ("language_mixing", "Table 10", "Whether the response unexpectedly switches between languages or dialects "
     "without instruction or user prompting."),
    ("typo", "Table 10", "Whether the response contains spelling mistakes, character errors, or malformed words "
     "that reduce readability."),
    ("contradiction", "Table 10", "Whether the response contains internal inconsistencies or conflicts with its "
     "own earlier statements."),
    ("hallucination", "Table 10", "Whether the response fabricates facts, citations, or details that are "
     "presented as truth but are not grounded in reliable sources."),
    ("omission", "Table 10", "Whether key details, steps, or context are missing, leading to an incomplete or "
     "misleading answer."),
    ("overgeneralization", "Table 10", "Whether the response makes broad, unsupported claims or ignores edge "
     "cases, resulting in oversimplification."),
    ("irrelevance", "ours (not in Table 10)", "Whether the response, or a substantial part of it, does not "
     "address the query and discusses unrelated topics."),
    ("verbosity", "Table 10", "Whether the response is unnecessarily long-winded, repeating points without "
     "adding value."),
    ("underexplained", "Table 10", "Whether the response is too brief or lacks the necessary depth to be useful "
     "or correct."),
    ("ambiguity", "Table 10", "Whether the response is vague or unclear in wording, leading to multiple "
     "possible interpretations."),
    ("instruction_ignoring", "ours (not in Table 10)", "Whether the response disregards explicit instructions "
     "or constraints of the query, such as the requested format, length, language or task."),
    ("repetition", "Table 10", "Whether the response repeats phrases or sentences excessively, often due to "
     "generation loops."),
    ("overconfidence", "Table 10", "Whether the response states information in an authoritative tone despite "
     "being incorrect or uncertain."),
    ("bias_or_harm", "ours (not in Table 10)", "Whether the response contains biased, discriminatory or "
     "stereotyping content, or advice that could cause harm to the user's health or safety if followed."),
]
# fmt: on
MODE_NAMES = [m for m, _, _ in FAILURE_MODES]

TRANSLATION_SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "description": "The question in German."},
        "answer": {"type": "string", "description": "The reference answer in German."},
    },
    "required": ["question", "answer"],
}


def failure_mode_schema() -> dict:
    return {
        "type": "object",
        "properties": {m: {"type": "boolean", "description": d} for m, _, d in FAILURE_MODES},
        "required": list(MODE_NAMES),
    }


@functools.lru_cache(maxsize=1)
def _failure_schema_json() -> str:
    return json.dumps(failure_mode_schema(), indent=2, ensure_ascii=False)


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(PROMPTS_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
    )


def render(name: str, **values) -> str:
    """Render prompts/<name>.jinja (no trailing newline)."""
    return _env().get_template(f"{name}.jinja").render(**values).rstrip("\n")


def messages(kind: str, **values) -> tuple:
    """(system, user) chat messages of a prompt kind: pairwise, failure_modes or translation."""
    if kind == "failure_modes":
        values = {"schema_json": _failure_schema_json(), **values}
    return (
        {"role": "system", "content": render(f"{kind}.system", **values)},
        {"role": "user", "content": render(f"{kind}.user", **values)},
    )


def parse_answer(record: dict, schema: dict) -> tuple[dict | None, str | None]:
    """(answer, None) for a schema-valid answer, else (None, why): failed call, refusal, no JSON,
    or JSON that breaks the schema."""
    if record.get("status") != "ok":
        return None, f"failed: {record.get('error')}"
    content = record.get("content")
    if not content:
        return None, f"invalid: empty answer (refusal: {record.get('refusal')}, finish: {record.get('finish_reason')})"
    try:
        obj = json.loads(content)
    except json.JSONDecodeError as e:
        return None, f"invalid: not JSON ({e.msg}; finish: {record.get('finish_reason')})"
    try:
        jsonschema.validate(obj, schema)
    except jsonschema.ValidationError as e:
        return None, f"invalid: {e.message}"
    return obj, None


def judge_prompt_texts() -> list[str]:
    """The fixed text of the judge prompts and their JSON answers' keys (tiny judges' tokenizers)."""
    texts = []
    for kind, values in (
        ("pairwise", {"context": "", "query": "", "response_a": "", "response_b": ""}),
        ("failure_modes", {"context": "", "query": "", "response": ""}),
    ):
        texts += [m["content"] for m in messages(kind, **values)]
    texts.append(json.dumps({m: False for m in MODE_NAMES}) + json.dumps({m: True for m in MODE_NAMES}))
    texts.append(json.dumps({"reasoning": "", "winner": "A"}) + json.dumps({"reasoning": "", "winner": "B"}))
    return texts
