"""What the judges' calls cost before any is made: tokens counted on the real prompts, the config's
price table, the estimate of a run's judge stages (and of a whole paper run before anything
exists), and the budget check that stops a stage above judges.max_cost_usd.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from definemed.config import Settings
from definemed.judges.client import JudgeRequest, JudgeSettings
from definemed.judges.requests import (
    JudgeStageSettings,
    PairwiseSettings,
    failure_mode_requests,
    medqa_translation_requests,
    pairwise_requests,
    translation_requests,
)


@dataclass(frozen=True)
class JudgesSettings(Settings):
    """The judges section: both judge stages, the price table and the budget guard of the cost
    estimate, and the stages' cluster resources."""

    SECTION = "judges"
    pairwise: PairwiseSettings
    failure_modes: JudgeStageSettings
    prices: dict
    price_source: str
    max_cost_usd: float | None
    resources: dict


@dataclass(frozen=True)
class JudgeBudgetSettings(Settings):
    """The part of the judges section a translation reads: the price table and the budget guard
    (the rules pass only these, so that other judge settings do not rerun a translation)."""

    SECTION = "judges"
    prices: dict
    max_cost_usd: float | None


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
    """USD for `n_calls` calls with these token totals (prices per million tokens; `price` an entry
    of the settings' judges.prices, its batch_discount filled in from the schema)."""
    factor = price["batch_discount"] if batch else 1.0
    return factor * (input_tokens * price["input"] + output_tokens * price["output"]) / 1e6


def estimate_stage(
    name: str, requests: list[JudgeRequest], judge: JudgeSettings, prices: dict, output_tokens: int
) -> dict:
    """Cost of one judge stage: counted prompt tokens, `output_tokens` per answer assumed (the
    answer is not known before the call). Local and rubric backends cost nothing."""
    input_tokens = sum(request_input_tokens(r) for r in requests)
    out_tokens = output_tokens * len(requests)
    entry = {
        "stage": name,
        "backend": judge.backend,
        "model": judge.model,
        "calls": len(requests),
        "input_tokens": input_tokens,
        "output_tokens_assumed": out_tokens,
        "output_tokens_per_call_assumed": output_tokens,
        "batch_api": judge.batch_api,
    }
    if judge.backend in ("local", "rubric"):
        entry.update(price=None, cost=0.0)
    else:
        price = price_of(prices, judge.model)
        entry.update(price=price, cost=call_cost(len(requests), input_tokens, out_tokens, price, entry["batch_api"]))
    return entry


def cost_estimate(
    queries: list[dict],
    generations: dict[str, dict[str, str]],
    models: list[str],
    judges: JudgesSettings,
    translation: tuple[list[dict], JudgeStageSettings] | None = None,
) -> dict:
    """The cost of every judge call of a run, from the real prompts (token counts) and the config's
    price table, before any call: {"currency", "calls": {stage: ...}, "total", ...}."""
    stages = {}
    if translation is not None:
        rows, stage = translation
        stages["translation"] = estimate_stage(
            "translation", translation_requests(rows), stage.judge, judges.prices, stage.output_tokens
        )
    pw = judges.pairwise
    stages["pairwise"] = estimate_stage(
        "pairwise",
        pairwise_requests(queries, generations, models, pw.both_orders),
        pw.judge,
        judges.prices,
        pw.output_tokens,
    )
    fm = judges.failure_modes
    stages["failure_modes"] = estimate_stage(
        "failure_modes",
        failure_mode_requests(queries, generations, models),
        fm.judge,
        judges.prices,
        fm.output_tokens,
    )
    return {
        "currency": "USD",
        "calls": stages,
        "total": sum(s["cost"] for s in stages.values()),
        "models": list(models),
        "queries": len(queries),
        "price_source": judges.price_source,
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
    from definemed.judges.generation import generation_models

    judges, models = JudgesSettings.from_config(config["judges"]), generation_models(config)
    n = config["medalpaca"]["sample_size"]
    queries = [{"id": f"q{i}", "query": plan_text(query_chars), "context": plan_text(context_chars)} for i in range(n)]
    response = plan_text(response_tokens * 4)  # the estimate counts ~4 characters per token
    generations = {m: {q["id"]: response for q in queries} for m in models}
    translation = None
    if config["medalpaca"]["source"] == "hub":
        half = translation_chars // 2
        rows = [{"id": f"q{i}", "question": plan_text(half), "answer": plan_text(half)} for i in range(n)]
        translation = (rows, JudgeStageSettings.from_config(config["medalpaca"]["translation"]))
    estimate = cost_estimate(queries, generations, models, judges, translation)
    medqa = config.get("medqa_de", {})
    reads_medqa = any(t.get("data") == "medqa_de" for t in config.get("benchmarks", {}).get("tasks", {}).values())
    if reads_medqa and medqa.get("source") == "translate":
        option = plan_text(medqa_chars // 10)
        rows = [
            {"id": f"m{i}", "sent1": plan_text(medqa_chars), **{f"ending{j}": option for j in range(4)}}
            for i in range(medqa["sample"])
        ]
        stage = JudgeStageSettings.from_config(medqa["translation"])
        estimate["calls"]["medqa_translation"] = estimate_stage(
            "medqa_translation", medqa_translation_requests(rows), stage.judge, judges.prices, stage.output_tokens
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


def check_budget(cost_usd: float, limit: float | None, what: str) -> None:
    """Stop before the first paid call of a stage when its estimate is above `limit`, the config's
    judges.max_cost_usd (None: no limit). `what` names the estimate in the message."""
    if limit is not None and cost_usd > limit:
        raise SystemExit(
            f"estimated cost of {what} is {cost_usd:.2f} USD, above judges.max_cost_usd = {limit}: "
            "no call was made; raise judges.max_cost_usd in the config to proceed"
        )
