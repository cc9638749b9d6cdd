"""A real HTTP server on loopback that answers huggingface_hub's download calls for a few in-memory
repositories (HF_ENDPOINT points at it): repository info at a revision, and HEAD/GET of
`<repo>/resolve/<revision>/<file>`. It records the Authorization header of every request. A
repository named in `echo_token` is refused with a 403 whose message quotes the caller's token (as
error pages sometimes quote credentials): a script that prints the error verbatim leaks it."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubServer:
    def __init__(self, repos: dict[str, dict[str, bytes]], echo_token: tuple[str, ...] = ()):
        self.repos = repos  # "models/org/name" or "datasets/org/name" -> {filename: content}
        self.echo_token = set(echo_token)
        self.lock = threading.Lock()
        self.authorization: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_HEAD(self):
                server.handle(self, body=False)

            def do_GET(self):
                server.handle(self, body=True)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @staticmethod
    def send(handler, status: int, data: bytes, headers: dict, body: bool):
        handler.send_response(status)
        for k, v in {"Content-Length": str(len(data)), **headers}.items():
            handler.send_header(k, v)
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    def locate(self, parts: list[str]) -> tuple[str, list[str]]:
        """(repository key, rest of the path) of a path; datasets carry a 'datasets' prefix."""
        kind = "datasets" if parts[0] == "datasets" else "models"
        parts = parts[1:] if parts[0] in ("datasets", "models") else parts
        return f"{kind}/{parts[0]}/{parts[1]}", parts[2:]

    def handle(self, handler, body: bool):
        auth = handler.headers.get("Authorization")
        with self.lock:
            self.authorization.append(auth)
        parts = [unquote(p) for p in urlsplit(handler.path).path.strip("/").split("/")]
        api = parts[0] == "api"
        if api and len(parts) < 4:  # registries huggingface_hub reads on the side (agent harnesses)
            return self.send(handler, 404, b'{"error": "not served here"}', {}, body)
        key, rest = self.locate(parts[1:] if api else parts)
        if key in self.echo_token:
            message = f"Access to {key} is restricted; the token {auth} is not authorised."
            headers = {"Content-Type": "application/json", "X-Error-Message": message}  # HEAD: header only
            return self.send(handler, 403, json.dumps({"error": message}).encode(), headers, body)
        files = self.repos.get(key)
        if files is None:
            return self.send(handler, 404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}, body)
        if api and rest[:1] == ["revision"]:  # /api/<kind>/<org>/<name>/revision/<revision>
            info = {"id": key.split("/", 1)[1], "sha": COMMIT, "siblings": [{"rfilename": f} for f in sorted(files)]}
            return self.send(handler, 200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)
        if api and rest[:1] == ["tree"]:  # /api/<kind>/<org>/<name>/tree/<revision>?recursive=true
            tree = [
                {"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                for f, d in sorted(files.items())
            ]
            return self.send(handler, 200, json.dumps(tree).encode(), {"Content-Type": "application/json"}, body)
        name = "/".join(rest[2:])  # resolve/<revision>/<file>
        if rest[:1] != ["resolve"] or name not in files:
            return self.send(handler, 404, b'{"error": "Entry not found"}', {"X-Error-Code": "EntryNotFound"}, body)
        data = files[name]
        etag = f'"{hashlib.sha256(data).hexdigest()}"'
        headers = {"ETag": etag, "X-Repo-Commit": COMMIT, "Content-Type": "application/octet-stream"}
        self.send(handler, 200, data, headers, body)
