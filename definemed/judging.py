"""LLM-as-judge evaluations of the paper: pairwise win rates (5.2, Figure 2) and failure modes
(5.3, Figure 3, Table 10), with the A.7 prompts as Jinja2 templates under prompts/.

Pairwise: every pair of models is judged on every query, by default in both presentation orders
(the paper does not say; both orders control the judge's position bias). A verdict names the
winning model, a tie, or nothing (failed call or schema-invalid answer: counted as invalid).

Win rate of row model R against column model C (Figure 2):
    win_rate = wins_R / n,  n = valid verdicts between R and C (wins + losses + ties),
so that R's and C's rates against each other add up to 1 - tie share, as the paper reports pairs
("wins ... by a rate of x versus y"). The 95% interval is Wilson's score interval for wins / n.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from pathlib import Path

import jinja2
import jsonschema

from definemed.generation import read_jsonl
from definemed.judge_client import JudgeRequest

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"

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


# -- requests -------------------------------------------------------------------------------------
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


# -- aggregates -----------------------------------------------------------------------------------
def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float | None, float | None]:
    """Wilson score interval of a binomial proportion k/n (95% by default)."""
    if n == 0:
        return None, None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


WIN_RATE_DEFINITION = (
    "win_rate = wins / n for the row model against the column model, n = valid verdicts of the pair "
    "(wins + losses + ties; failed or schema-invalid verdicts are counted under 'invalid' and left out), "
    "pooled over both presentation orders when both are judged; ci_low/ci_high: 95% Wilson score interval "
    "of wins / n; tie_rate = ties / n."
)


def winrate_matrix(verdicts: list[dict], models: list[str]) -> dict:
    cells = {r: {c: {"wins": 0, "losses": 0, "ties": 0, "invalid": 0} for c in models if c != r} for r in models}
    for v in verdicts:
        first, second = v["pair"]
        for row, col in ((first, second), (second, first)):
            cell = cells[row][col]
            if v["status"] != "valid":
                cell["invalid"] += 1
            elif v["winner"] == "tie":
                cell["ties"] += 1
            elif v["winner"] == row:
                cell["wins"] += 1
            else:
                cell["losses"] += 1
    for row in cells.values():
        for cell in row.values():
            n = cell["wins"] + cell["losses"] + cell["ties"]
            lo, hi = wilson(cell["wins"], n)
            cell.update(
                n=n,
                win_rate=cell["wins"] / n if n else None,
                tie_rate=cell["ties"] / n if n else None,
                ci_low=lo,
                ci_high=hi,
            )
    return cells


def position_bias(verdicts: list[dict]) -> dict:
    """How often the judge picks the first-presented response, among valid non-tie verdicts."""
    valid = [v for v in verdicts if v["status"] == "valid" and v["winner_label"] in ("A", "B")]
    k = sum(v["winner_label"] == "A" for v in valid)
    lo, hi = wilson(k, len(valid))
    return {"first_position_wins": k, "decisive": len(valid), "share": k / len(valid) if valid else None,
            "ci_low": lo, "ci_high": hi}  # fmt: skip


def failure_mode_counts(rows_by_model: dict[str, list[dict]], models: list[str], display: dict) -> dict:
    out = {}
    for m in models:
        rows = rows_by_model.get(m, [])
        valid = [r for r in rows if r["status"] == "valid"]
        counts = {mode: sum(r["modes"][mode] for r in valid) for mode in MODE_NAMES}
        out[m] = {
            "display": display[m],
            "responses": len(rows),
            "judged": len(valid),
            "invalid": len(rows) - len(valid),
            "counts": counts,
            "shares": {mode: (c / len(valid) if valid else None) for mode, c in counts.items()},
        }
    return out


# -- cost -----------------------------------------------------------------------------------------
def estimate_tokens(text: str) -> int:
    """Tokens of `text` for an OpenAI model: tiktoken's o200k_base when it is installed and its
    encoding is cached, else OpenAI's rule of thumb of ~4 characters per token (no network here)."""
    try:
        import tiktoken

        return len(tiktoken.get_encoding("o200k_base").encode(text))
    except Exception:
        return math.ceil(len(text) / 4)


MESSAGE_OVERHEAD_TOKENS = 4  # per chat message (role and separators), OpenAI's cookbook count


def request_input_tokens(req: JudgeRequest) -> int:
    """Prompt tokens of a request: messages plus the schema sent as response_format."""
    text = sum(estimate_tokens(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in req.messages)
    return text + estimate_tokens(json.dumps(req.schema)) + 3


def price_of(prices: dict, model: str) -> dict:
    if model not in prices:
        raise KeyError(f"config judges.prices has no entry for judge model {model!r}")
    return prices[model]


def call_cost(n_calls: int, input_tokens: int, output_tokens: int, price: dict, batch: bool) -> float:
    """USD for `n_calls` calls with these token totals (prices per million tokens)."""
    factor = price.get("batch_discount", 0.5) if batch else 1.0
    return factor * (input_tokens * price["input"] + output_tokens * price["output"]) / 1e6


def estimate_stage(name: str, requests: list[JudgeRequest], judge: dict, prices: dict, output_tokens: int) -> dict:
    """Cost of one judge stage: counted prompt tokens, `output_tokens` per answer assumed (the
    answer is not known before the call). Local backends cost nothing."""
    input_tokens = sum(request_input_tokens(r) for r in requests)
    out_tokens = output_tokens * len(requests)
    entry = {
        "stage": name,
        "backend": judge["backend"],
        "model": judge["model"],
        "calls": len(requests),
        "input_tokens": input_tokens,
        "output_tokens_assumed": out_tokens,
        "output_tokens_per_call_assumed": output_tokens,
        "batch_api": bool(judge.get("batch_api")),
    }
    if judge["backend"] == "local":
        entry.update(price=None, cost=0.0)
    else:
        price = price_of(prices, judge["model"])
        entry.update(price=price, cost=call_cost(len(requests), input_tokens, out_tokens, price, entry["batch_api"]))
    return entry


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


def cost_estimate(
    queries: list[dict],
    generations: dict[str, dict[str, str]],
    models: list[str],
    judges: dict,
    translation: tuple[list[dict], dict] | None = None,
) -> dict:
    """The cost of every judge call of a run, from the real prompts (token counts) and the config's
    price table, before any call: {"currency", "calls": {stage: ...}, "total", ...}."""
    stages = {}
    if translation is not None:
        rows, stage = translation
        stages["translation"] = estimate_stage(
            "translation", translation_requests(rows), stage["judge"], judges["prices"], stage["output_tokens"]
        )
    pw = judges["pairwise"]
    stages["pairwise"] = estimate_stage(
        "pairwise",
        pairwise_requests(queries, generations, models, pw["both_orders"]),
        pw["judge"],
        judges["prices"],
        pw["output_tokens"],
    )
    fm = judges["failure_modes"]
    stages["failure_modes"] = estimate_stage(
        "failure_modes",
        failure_mode_requests(queries, generations, models),
        fm["judge"],
        judges["prices"],
        fm["output_tokens"],
    )
    return {
        "currency": "USD",
        "calls": stages,
        "total": sum(s["cost"] for s in stages.values()),
        "models": list(models),
        "queries": len(queries),
        "price_source": judges.get("price_source", ""),
        "token_counting": "tiktoken o200k_base" if estimate_tokens("a b") != 1 else "~4 characters per token",
        "note": "input tokens counted on the rendered prompts and schemas; output tokens assumed per call "
        "(config output_tokens); cached answers are not subtracted",
    }


PLAN_FILLER = "Die Behandlung richtet sich nach der Ursache und dem Schweregrad der Erkrankung. "


def plan_text(chars: int) -> str:
    return (PLAN_FILLER * (chars // len(PLAN_FILLER) + 1))[:chars]


def plan_cost(
    config: dict,
    query_chars: int = 120,
    context_chars: int = 800,
    response_tokens: int = 500,
    translation_chars: int = 900,
    medqa_chars: int = 1000,
) -> dict:
    """The judge bill of a whole run before anything exists: every planned call with prompts of
    the given lengths (MedAlpaca query and reference answer, responses, MedQA question + options)."""
    from definemed.generation import generation_models
    from definemed.medqa import translation_requests as medqa_requests

    judges, models = config["judges"], generation_models(config)
    n = config["medalpaca"]["sample_size"]
    queries = [{"id": f"q{i}", "query": plan_text(query_chars), "context": plan_text(context_chars)} for i in range(n)]
    response = plan_text(response_tokens * 4)  # the estimate counts ~4 characters per token
    generations = {m: {q["id"]: response for q in queries} for m in models}
    translation = None
    if config["medalpaca"]["source"] == "hub":
        half = translation_chars // 2
        rows = [{"id": f"q{i}", "question": plan_text(half), "answer": plan_text(half)} for i in range(n)]
        translation = (rows, config["medalpaca"]["translation"])
    estimate = cost_estimate(queries, generations, models, judges, translation)
    medqa = config.get("medqa_de", {})
    reads_medqa = any(t.get("data") == "medqa_de" for t in config.get("benchmarks", {}).get("tasks", {}).values())
    if reads_medqa and medqa.get("source") == "translate":
        option = plan_text(medqa_chars // 10)
        rows = [
            {"id": f"m{i}", "sent1": plan_text(medqa_chars), **{f"ending{j}": option for j in range(4)}}
            for i in range(medqa["sample"])
        ]
        stage = medqa["translation"]
        estimate["calls"]["medqa_translation"] = estimate_stage(
            "medqa_translation", medqa_requests(rows), stage["judge"], judges["prices"], stage["output_tokens"]
        )
        estimate["total"] = sum(s["cost"] for s in estimate["calls"].values())
    estimate["plan"] = {
        "query_chars": query_chars,
        "context_chars": context_chars,
        "response_tokens": response_tokens,
        "translation_chars": translation_chars,
        "medqa_chars": medqa_chars,
    }
    return estimate


def check_budget(cost_usd: float, judges: dict, what: str) -> None:
    """Stop before the first paid call of a stage when its estimate is above judges.max_cost_usd
    (None: no limit). `what` names the estimate in the message."""
    limit = judges.get("max_cost_usd")
    if limit is not None and cost_usd > limit:
        raise SystemExit(
            f"estimated cost of {what} is {cost_usd:.2f} USD, above judges.max_cost_usd = {limit}: "
            "no call was made; raise judges.max_cost_usd in the config to proceed"
        )


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
