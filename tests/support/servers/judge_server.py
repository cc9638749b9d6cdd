"""A real OpenAI-compatible HTTP server on loopback for the judge-client tests: chat completions
with structured outputs, the Files and Batches endpoints of the Batch API, and injected faults.

Faults: each HTTP request to /v1/chat/completions fails with probability `fault_rate` (seeded),
cycling through 429 (with Retry-After), 500 and a timeout (the server holds the connection past
the client's timeout and closes it without an answer). Queries containing ALWAYS-FAIL get 503
every time; INVALID-JSON gets a 200 whose content is not JSON; ECHO-KEY gets a 400 whose message
quotes the caller's key (as some endpoints do). The server counts, per request body, how many
times it delivered an answer (an answer whose write failed because the client had already hung
up is not counted: the client never saw it)."""

from __future__ import annotations

import email.parser
import hashlib
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def answer_for(schema: dict):
    """A schema-valid object for the simple schemas of the judges."""
    out = {}
    for name, prop in schema.get("properties", {}).items():
        if "enum" in prop:
            out[name] = prop["enum"][0]
        elif prop.get("type") == "boolean":
            out[name] = len(name) % 2 == 0
        elif prop.get("type") == "array":  # e.g. MedQA's four options: minItems strings
            out[name] = [f"loopback answer for {name} {i}" for i in range(prop.get("minItems", 1))]
        else:
            out[name] = f"loopback answer for {name}"
    return out


class JudgeServer:
    def __init__(self, api_key: str, fault_rate: float = 1 / 3, timeout_hold_s: float = 1.0, seed: int = 0):
        self.api_key = api_key
        self.fault_rate = fault_rate
        self.timeout_hold_s = timeout_hold_s
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.http_requests = 0
        self.faults = Counter()
        self.answered = Counter()  # body identity -> answers sent
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.batch_polls = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, status, obj, headers=None, raw: bytes | None = None):
                data = raw if raw is not None else json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self):
                if self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    self._send(
                        401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
                    )
                    return False
                return True

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with server.lock:
                    server.http_requests += 1
                if not self._authorised():
                    return
                if self.path.endswith("/chat/completions"):
                    return server.chat(self, json.loads(raw))
                if self.path.endswith("/files"):
                    return server.upload(self, raw)
                if self.path.endswith("/batches"):
                    return server.create_batch(self, json.loads(raw))
                self._send(404, {"error": {"message": "not found"}})

            def do_GET(self):
                with server.lock:
                    server.http_requests += 1
                if not self._authorised():
                    return
                parts = self.path.split("?")[0].strip("/").split("/")
                if parts[-2] == "batches":
                    return server.get_batch(self, parts[-1])
                if parts[-1] == "content":
                    return self._send(200, None, raw=server.files[parts[-2]])
                self._send(404, {"error": {"message": "not found"}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @staticmethod
    def identity(body: dict) -> str:
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def delivered(self, body: dict, status: int) -> None:
        if status == 200:
            with self.lock:
                self.answered[self.identity(body)] += 1

    def completion(self, body: dict) -> tuple[int, dict]:
        """Answer a chat-completions body (shared by the online and the batch endpoints)."""
        text = " ".join(m["content"] for m in body["messages"])
        if "ECHO-KEY" in text:
            return 400, {"error": {"message": f"Incorrect request from key {self.api_key}", "type": "invalid"}}
        schema = body["response_format"]["json_schema"]["schema"]
        content = "this is not JSON" if "INVALID-JSON" in text else json.dumps(answer_for(schema))
        return 200, {
            "id": "chatcmpl-loopback",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": len(text) // 4, "completion_tokens": 20, "total_tokens": len(text) // 4 + 20},
        }

    def chat(self, handler, body: dict):
        text = " ".join(m["content"] for m in body["messages"])
        if "ALWAYS-FAIL" in text:
            with self.lock:
                self.faults[503] += 1
            return handler._send(503, {"error": {"message": "overloaded"}})
        with self.lock:
            fault = self.rng.random() < self.fault_rate
            kind = self.rng.choice([429, 500, "timeout"]) if fault else None
            if kind:
                self.faults[kind] += 1
        if kind == 429:
            return handler._send(429, {"error": {"message": "rate limit"}}, headers={"Retry-After": "0"})
        if kind == 500:
            return handler._send(500, {"error": {"message": "server error"}})
        if kind == "timeout":
            time.sleep(self.timeout_hold_s)  # the client has given up; close without an answer
            handler.close_connection = True
            return None
        status, obj = self.completion(body)
        handler._send(status, obj)  # raises if the client has hung up: then nothing was delivered
        self.delivered(body, status)

    # -- Batch API --------------------------------------------------------------------------------
    def upload(self, handler, raw: bytes):
        msg = email.parser.BytesParser().parsebytes(
            b"Content-Type: " + handler.headers["Content-Type"].encode() + b"\r\n\r\n" + raw
        )
        content = next(
            p.get_payload(decode=True)
            for p in msg.get_payload()
            if p.get_param("name", header="content-disposition") == "file"
        )
        file_id = f"file-{len(self.files)}"
        self.files[file_id] = content
        handler._send(200, {"id": file_id, "object": "file", "bytes": len(content), "created_at": 0,
                            "filename": "batch.jsonl", "purpose": "batch", "status": "processed"})  # fmt: skip

    def _batch_obj(self, b: dict) -> dict:
        return {
            "id": b["id"],
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": b["input"],
            "completion_window": "24h",
            "status": b["status"],
            "created_at": 0,
            "output_file_id": b.get("output"),
            "error_file_id": b.get("errors"),
            "request_counts": {"total": b["n"], "completed": b.get("done", 0), "failed": b.get("failed", 0)},
        }

    def create_batch(self, handler, body: dict):
        batch_id = f"batch-{len(self.batches)}"
        lines = [json.loads(x) for x in self.files[body["input_file_id"]].decode().splitlines() if x.strip()]
        self.batches[batch_id] = {"id": batch_id, "input": body["input_file_id"], "status": "in_progress",
                                  "n": len(lines), "polls": 0}  # fmt: skip
        handler._send(200, self._batch_obj(self.batches[batch_id]))

    def get_batch(self, handler, batch_id: str):
        b = self.batches[batch_id]
        self.batch_polls += 1
        b["polls"] += 1
        if b["status"] == "in_progress" and b["polls"] >= 2:  # done on the second poll
            out, err = [], []
            for line in self.files[b["input"]].decode().splitlines():
                req = json.loads(line)
                text = " ".join(m["content"] for m in req["body"]["messages"])
                if "ALWAYS-FAIL" in text:
                    err.append({"custom_id": req["custom_id"], "response": None,
                                "error": {"code": "server_error", "message": "failed"}})  # fmt: skip
                    continue
                status, obj = self.completion(req["body"])
                self.delivered(req["body"], status)
                out.append(
                    {"custom_id": req["custom_id"], "response": {"status_code": status, "body": obj}, "error": None}
                )
            b["output"], b["errors"] = f"file-out-{batch_id}", f"file-err-{batch_id}"
            self.files[b["output"]] = "".join(json.dumps(r) + "\n" for r in out).encode()
            self.files[b["errors"]] = "".join(json.dumps(r) + "\n" for r in err).encode()
            b.update(status="completed", done=len(out), failed=len(err))
        handler._send(200, self._batch_obj(b))
