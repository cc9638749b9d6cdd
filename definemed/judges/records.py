"""The record every judge backend writes for one request (definemed.judges.client's API and Batch
backends, definemed.judges.local): what callers and the response cache read, whichever backend
answered."""

from __future__ import annotations


def completion_record(completion: dict, attempts: int, elapsed: float) -> dict:
    """The record of an answered request, from a chat-completions response body."""
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    return {
        "status": "ok",
        "content": message.get("content"),
        "refusal": message.get("refusal"),
        "finish_reason": choice.get("finish_reason"),
        "model": completion.get("model"),
        "usage": completion.get("usage") or {},
        "attempts": attempts,
        "elapsed_s": round(elapsed, 3),
        "error": None,
    }


def failed_record(error: str, attempts: int, elapsed: float = 0.0) -> dict:
    """The record of a request that got no answer (`error` says why; never a secret)."""
    return {
        "status": "failed",
        "content": None,
        "finish_reason": None,
        "usage": {},
        "attempts": attempts,
        "elapsed_s": round(elapsed, 3),
        "error": error,
    }
