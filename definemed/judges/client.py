"""A frugal, resumable client for LLM judges (paper 5.2, 5.3, A.7).

One interface over four backends:
- ``openai``: any OpenAI-compatible endpoint by base URL (OpenAI, a vLLM server on premises, ...);
- ``azure``: Azure OpenAI (``base_url`` is the resource endpoint, ``api_version`` required);
- ``local``: a local Hugging Face model whose answers are forced into the JSON schema by xgrammar
  (offline);
- ``rubric``: no model, stated rules (definemed.judges.rubric; the miniature's judge) that read the
  same request bodies and answer in the same records.

Every request is a chat-completions body with a JSON-schema ``response_format`` (structured
outputs). Answers go into a persistent SQLite cache keyed by the SHA-256 of the canonical request
body (model, messages, schema, decoding settings): whatever shapes the answer, and nothing else
(never an API key, never the base URL, so that the same request through the Batch API or another
endpoint serving the same model is not paid twice). Each answer is committed the moment it
arrives, so a crash or a rerun never pays for a call twice, and a rerun of a finished job makes no
call at all. A request that still fails after its retries is recorded as failed (and counted by the
callers), never fatal and never dropped; ``retry_failed`` sends the recorded failures again.
Only authentication and permission errors stop a run: they concern the set-up, not an answer.

Transient errors (HTTP 429, 408, 409, 5xx, timeouts, dropped connections) are retried with
exponential backoff and jitter, honouring Retry-After. An endpoint may still finish (and bill) a
request its client gave up on, so ``timeout_s`` (default 120 s) sits far above an answer's time.
Concurrency is bounded by a thread pool.
The OpenAI Batch API (half price, results within 24 h) is an option for large runs; submitted
batches are recorded in the cache so that a killed job resumes polling instead of submitting again.
How one run went (cached, sent, answered, tokens paid) is the history of that run, not a result:
each run appends it to `<cache>.history.jsonl` beside the cache and logs it; the results a run
writes are the same bytes whether it started fresh or resumed from the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from definemed.config import Settings
from definemed.judges.local import LocalJudgeSettings
from definemed.judges.records import completion_record, failed_record

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 429}
FATAL_STATUS = {401, 403}
BATCH_ENDPOINT = "/v1/chat/completions"
BATCH_MAX_REQUESTS = 50000  # OpenAI's per-file limit


class FatalJudgeError(RuntimeError):
    """A failure of the set-up (bad key, no permission): no answer is recorded, the run stops."""


@dataclass(frozen=True)
class JudgeSettings(Settings):
    """One judge (or translator) as the config writes it ($defs.judge): backend and model, the
    endpoint and its key's variable, decoding, limits, retries and batching (defaults: the schema)."""

    SECTION = "$defs.judge"
    backend: str
    model: str
    base_url: str | None
    api_key_env: str
    api_version: str | None
    temperature: float
    max_tokens: int
    seed: int | None
    concurrency: int
    max_retries: int
    backoff_initial_s: float
    backoff_max_s: float
    timeout_s: float
    batch_api: bool
    batch_poll_s: float
    retry_failed: bool
    local: LocalJudgeSettings


@dataclass(frozen=True)
class JudgeRequest:
    """One judge call: `custom_id` is the caller's name for it (unique within a run)."""

    custom_id: str
    messages: tuple  # ({"role": ..., "content": ...}, ...)
    schema_name: str
    schema: dict
    meta: dict = field(default_factory=dict, compare=False, hash=False)


def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _with_each_node(schema: dict, change) -> dict:
    """A deep copy of a JSON schema with `change(node)` applied to every mapping in it."""
    schema = json.loads(json.dumps(schema))

    def walk(node):
        if isinstance(node, dict):
            change(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return schema


def add_max_length(schema: dict, max_chars: int) -> dict:
    """A copy of `schema` whose free-text strings are capped at `max_chars`: a random or weak local
    model under a grammar may otherwise write one string forever. The cap is a pattern, not
    maxLength: xgrammar 0.2.8 turns maxLength into the class [^"\\\r\n], which lets raw control
    characters through (invalid JSON); the pattern excludes them, quotes and escapes."""

    def cap(node):
        if node.get("type") == "string" and not {"enum", "maxLength", "pattern"} & node.keys():
            node["pattern"] = f'^[^\\x00-\\x1f"\\\\]{{0,{max_chars}}}$'

    return _with_each_node(schema, cap)


def strict_schema(schema: dict) -> dict:
    """OpenAI strict structured outputs need additionalProperties: false on every object."""

    def close(node):
        if node.get("type") == "object":
            node.setdefault("additionalProperties", False)

    return _with_each_node(schema, close)


def request_body(req: JudgeRequest, settings: JudgeSettings, model_id: str | None = None) -> dict:
    """The chat-completions body of `req` under the judge `settings`."""
    schema = strict_schema(req.schema)
    if settings.backend == "local":
        schema = add_max_length(schema, settings.local.max_string_chars)
    body = {
        "model": model_id or settings.model,
        "messages": [dict(m) for m in req.messages],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": req.schema_name, "schema": schema, "strict": True},
        },
        "temperature": settings.temperature,
        "max_completion_tokens": settings.max_tokens,
    }
    if settings.seed is not None:
        body["seed"] = settings.seed
    return body


def judge_name(settings: JudgeSettings) -> str:
    """How results, figures and the report name a judge: the model, or for the rubric backend its
    name and rules."""
    if settings.backend == "rubric":
        from definemed.judges.rubric import RULES_SUMMARY

        return f"{settings.model} (no model; rules: {RULES_SUMMARY})"
    return settings.model


def body_key(body: dict) -> str:
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


class ResponseCache:
    """Answers by request key in SQLite: every answer is committed as it arrives."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, status TEXT NOT NULL,"
            " record TEXT NOT NULL, created REAL NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS batches (batch_id TEXT PRIMARY KEY, keys TEXT NOT NULL,"
            " state TEXT NOT NULL, created REAL NOT NULL)"
        )
        self._db.commit()

    def get(self, key: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT record FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, record: dict) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                (key, record["status"], json.dumps(record, ensure_ascii=False), time.time()),
            )
            self._db.commit()

    def keys(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT key FROM responses")}

    def open_batches(self) -> list[tuple[str, list[str]]]:
        with self._lock:
            rows = self._db.execute("SELECT batch_id, keys FROM batches WHERE state = 'open'").fetchall()
        return [(b, json.loads(k)) for b, k in rows]

    def add_batch(self, batch_id: str, keys: list[str]) -> None:
        with self._lock:
            self._db.execute("INSERT INTO batches VALUES (?, ?, 'open', ?)", (batch_id, json.dumps(keys), time.time()))
            self._db.commit()

    def close_batch(self, batch_id: str, state: str) -> None:
        with self._lock:
            self._db.execute("UPDATE batches SET state = ? WHERE batch_id = ?", (state, batch_id))
            self._db.commit()

    def close(self) -> None:
        self._db.close()


def _scrub(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


@dataclass
class RunStats:
    requests: int = 0
    unique: int = 0
    cached: int = 0
    sent: int = 0
    http_calls: int = 0
    answered: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def history_path(cache_path) -> Path:
    """Where the runs on one cache record how they went (one JSON line per run)."""
    cache_path = Path(cache_path)
    return cache_path.with_name(cache_path.stem + ".history.jsonl")


class JudgeClient:
    """Run judge requests through the cache and one backend (see the module docstring).

    `settings` is the judge's settings; `cache_path` the SQLite file (keep it outside the rule's
    declared outputs so that it survives a failed job); `model_dir` the local model for the local
    backend. Secrets are read from the environment variable `settings.api_key_env` and never
    written anywhere."""

    def __init__(self, settings: JudgeSettings, cache_path, model_dir=None, sleep=time.sleep):
        self.settings = settings
        self.backend = settings.backend
        self.cache = ResponseCache(cache_path)
        self.history_path = history_path(cache_path)
        self.sleep = sleep
        self._secrets: list[str] = []
        self._client = None
        self._local = None
        self.model_id = settings.model
        if self.backend == "rubric":
            from definemed.judges.rubric import rubric_digest

            # the rules' identity is their code and vocabulary: changed rules are not served from the cache
            self.model_id = f"rubric:{settings.model}@{rubric_digest()}"
        if self.backend == "local":
            if model_dir is None:
                raise ValueError("the local judge backend needs model_dir")
            self.model_dir = model_dir
            # the local model's identity is its build (or Hub pin), not only its config key
            src = Path(model_dir) / "definemed-source.json"
            if src.exists():
                digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
                self.model_id = f"local:{settings.model}@{digest}"

    # -- backends -------------------------------------------------------------------------------
    def _api_key(self) -> str:
        env = self.settings.api_key_env
        key = os.environ.get(env)
        if not key:
            raise FatalJudgeError(f"environment variable {env} is not set (the judge's API key)")
        self._secrets.append(key)
        return key

    @property
    def client(self):
        if self._client is None:
            import openai

            common = dict(api_key=self._api_key(), max_retries=0, timeout=self.settings.timeout_s)
            if self.backend == "azure":
                self._client = openai.AzureOpenAI(
                    azure_endpoint=self.settings.base_url, api_version=self.settings.api_version, **common
                )
            else:
                self._client = openai.OpenAI(base_url=self.settings.base_url, **common)
        return self._client

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        s = self.settings
        delay = min(s.backoff_max_s, s.backoff_initial_s * 2 ** (attempt - 1))
        delay *= 0.5 + random.random()  # full jitter around the exponential schedule
        if retry_after is not None:
            delay = max(delay, min(retry_after, s.backoff_max_s))
        return delay

    def _call(self, body: dict, stats: RunStats, stats_lock) -> dict:
        import openai

        attempts, start = 0, time.monotonic()
        while True:
            attempts += 1
            with stats_lock:
                stats.http_calls += 1
            retry_after = None
            try:
                completion = self.client.chat.completions.create(**body)
                return completion_record(completion.model_dump(), attempts, time.monotonic() - start)
            except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
                raise FatalJudgeError(_scrub(f"{type(e).__name__}: {e}", self._secrets)) from None
            except (openai.APITimeoutError, openai.APIConnectionError) as e:
                error = f"{type(e).__name__}: {e}"
            except openai.APIStatusError as e:
                error = f"HTTP {e.status_code}: {type(e).__name__}: {e}"
                if e.status_code in FATAL_STATUS:
                    raise FatalJudgeError(_scrub(error, self._secrets)) from None
                if e.status_code not in RETRYABLE_STATUS and e.status_code < 500:
                    # a request the endpoint rejects (400, 404, 422) fails the same way again
                    return failed_record(_scrub(error, self._secrets), attempts, time.monotonic() - start)
                try:
                    retry_after = float(e.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    retry_after = None
            error = _scrub(error, self._secrets)
            if attempts > self.settings.max_retries:
                return failed_record(
                    f"gave up after {attempts} attempts; last: {error}", attempts, time.monotonic() - start
                )
            delay = self._backoff(attempts, retry_after)
            log.info("retry %d of a request in %.2f s after %s", attempts, delay, error[:200])
            self.sleep(delay)

    def _run_online(self, todo: dict[str, dict], stats: RunStats, on_done) -> None:
        lock = threading.Lock()
        with ThreadPoolExecutor(max_workers=self.settings.concurrency) as pool:
            futures = {pool.submit(self._call, body, stats, lock): key for key, body in todo.items()}
            try:
                for fut in as_completed(futures):
                    on_done(futures[fut], fut.result())
            except BaseException:
                for f in futures:
                    f.cancel()
                raise

    def _run_local(self, todo: dict[str, dict], stats: RunStats, on_done) -> None:
        if self._local is None:
            from definemed.judges.local import LocalJudge

            self._local = LocalJudge(self.model_dir, self.settings.local)
        for key, record in self._local.complete(todo):
            stats.http_calls += 1
            on_done(key, record)

    def _run_rubric(self, todo: dict[str, dict], stats: RunStats, on_done) -> None:
        from definemed.judges.rubric import RubricJudge

        for key, record in RubricJudge().complete(todo):
            on_done(key, record)

    def _run_batch(self, todo: dict[str, dict], stats: RunStats, on_done) -> None:
        """The OpenAI Batch API: upload, create, poll, download. Batches submitted by a killed
        earlier job are polled again, never submitted twice."""
        client = self.client
        pending = dict(todo)
        batches = [(b, [k for k in keys if k in pending]) for b, keys in self.cache.open_batches()]
        batches = [(b, keys) for b, keys in batches if keys]
        covered = {k for _, keys in batches for k in keys}
        fresh = [k for k in pending if k not in covered]
        for start in range(0, len(fresh), BATCH_MAX_REQUESTS):
            keys = fresh[start : start + BATCH_MAX_REQUESTS]
            lines = "".join(
                canonical_json({"custom_id": k, "method": "POST", "url": BATCH_ENDPOINT, "body": pending[k]}) + "\n"
                for k in keys
            )
            stats.http_calls += 2
            upload = client.files.create(file=("judge-batch.jsonl", lines.encode("utf-8")), purpose="batch")
            batch = client.batches.create(input_file_id=upload.id, endpoint=BATCH_ENDPOINT, completion_window="24h")
            self.cache.add_batch(batch.id, keys)
            log.info("submitted batch %s with %d requests", batch.id, len(keys))
            batches.append((batch.id, keys))
        for batch_id, keys in batches:
            while True:
                stats.http_calls += 1
                batch = client.batches.retrieve(batch_id)
                if batch.status in ("completed", "failed", "expired", "cancelled"):
                    break
                log.info("batch %s: %s %s", batch_id, batch.status, batch.request_counts)
                self.sleep(self.settings.batch_poll_s)
            seen = set()
            for file_id in (batch.output_file_id, batch.error_file_id):
                if not file_id:
                    continue
                stats.http_calls += 1
                for line in client.files.content(file_id).text.splitlines():
                    if not line.strip():
                        continue
                    row = json.loads(line)
                    key = row.get("custom_id")
                    if key not in pending or key in seen:
                        continue
                    seen.add(key)
                    response = row.get("response") or {}
                    if response.get("status_code") == 200:
                        record = completion_record(response["body"], 1, 0.0)
                    else:
                        err = row.get("error") or (response.get("body") or {}).get("error") or response
                        record = failed_record(_scrub(f"batch {batch_id}: {err}", self._secrets), 1)
                    on_done(key, record)
            for key in keys:
                if key not in seen:
                    on_done(key, failed_record(f"batch {batch_id} ended {batch.status} without an answer", 1))
            self.cache.close_batch(batch_id, batch.status)

    # -- public ---------------------------------------------------------------------------------
    def run(self, requests: list[JudgeRequest]) -> tuple[dict[str, dict], RunStats]:
        """Answer every request: {custom_id: record with "key"}, and the run's statistics."""
        stats = RunStats(requests=len(requests))
        ids = [r.custom_id for r in requests]
        if len(set(ids)) != len(ids):
            raise ValueError("custom_id values must be unique within a run")
        bodies = {r.custom_id: request_body(r, self.settings, self.model_id) for r in requests}
        keys = {cid: body_key(b) for cid, b in bodies.items()}
        unique = {keys[cid]: bodies[cid] for cid in ids}
        stats.unique = len(unique)
        done: dict[str, dict] = {}
        todo: dict[str, dict] = {}
        for key, body in unique.items():
            rec = self.cache.get(key)
            if rec is not None and (rec["status"] == "ok" or not self.settings.retry_failed):
                done[key] = rec
                stats.cached += 1
            else:
                todo[key] = body
        stats.sent = len(todo)
        if todo:
            log.info(
                "%d requests: %d unique, %d cached, %d to send (%s backend, model %s)",
                stats.requests, stats.unique, stats.cached, stats.sent, self.backend, self.settings.model,
            )  # fmt: skip
        progress = {"n": 0, "t": time.monotonic()}

        def on_done(key, record):
            self.cache.put(key, record)
            done[key] = record
            if record["status"] == "ok":
                stats.answered += 1
                stats.prompt_tokens += int(record["usage"].get("prompt_tokens") or 0)
                stats.completion_tokens += int(record["usage"].get("completion_tokens") or 0)
            else:
                stats.failed += 1
            progress["n"] += 1
            if time.monotonic() - progress["t"] > 30 or progress["n"] == len(todo):
                progress["t"] = time.monotonic()
                log.info("%d/%d answered or recorded (%d failed)", progress["n"], len(todo), stats.failed)

        if todo:
            if self.backend == "local":
                self._run_local(todo, stats, on_done)
            elif self.backend == "rubric":
                self._run_rubric(todo, stats, on_done)
            elif self.settings.batch_api:
                self._run_batch(todo, stats, on_done)
            else:
                self._run_online(todo, stats, on_done)
        self._record_history(stats)
        return {cid: {**done[keys[cid]], "key": keys[cid]} for cid in ids}, stats

    def _record_history(self, stats: RunStats) -> None:
        """Append this run's statistics to the history beside the cache (a rerun of a killed job
        shows there as cached > 0), and log them; results never carry them."""
        import datetime

        row = {"time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
               "judge": self.model_id, **stats.as_dict()}  # fmt: skip
        with open(self.history_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        log.info("run: %s (history: %s)", stats.as_dict(), self.history_path)

    def close(self) -> None:
        self.cache.close()
