"""A small stand-in of the Hugging Face Hub's HTTP API on loopback, for the lock tests: the
endpoints huggingface_hub 2.4 calls for `model_info`/`dataset_info`
(`/api/{models,datasets}/<repo>/revision/<rev>`), `list_repo_tree`
(`/api/<type>s/<repo>/tree/<rev>/<path>`, Link-header pagination) and `hf_hub_download`
(`[/datasets]/<repo>/resolve/<rev>/<path>`, HEAD and GET). Point a client at it with
HF_ENDPOINT. Each repository has one commit (the SHA-1 of its content) that `main` names; every
request is counted, so a test can show that a client made none, and its Authorization header kept.
A repository named in `refuse` is answered with a 403 whose message quotes the caller's token (as
error pages sometimes quote credentials): a script that prints the error verbatim leaks it."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


class Repo:
    def __init__(self, files: dict[str, bytes], commits=()):
        self.files = dict(sorted(files.items()))
        self.commits = set(commits)  # further commit SHAs with the same content
        digest = hashlib.sha1()
        for path, data in self.files.items():
            digest.update(path.encode() + b"\0" + data)
        self.sha = digest.hexdigest()

    def resolve(self, revision: str) -> bool:
        return revision in ("main", self.sha, *self.commits)


class HubServer:
    page_size = 2  # small pages: the client must follow the Link header

    def __init__(self, models: dict[str, dict] = (), datasets: dict[str, dict] = (), commits: dict = (), refuse=()):
        """`models`/`datasets`: repo -> {path: bytes}; `commits`: repo -> commit SHAs it also knows;
        `refuse`: (repo type, repo) pairs answered with a 403 that quotes the token."""
        commits = dict(commits)
        self.refuse = set(refuse)
        self.authorization: list[str | None] = []
        self.repos = {("model", r): Repo(f, commits.get(r, ())) for r, f in dict(models).items()}
        self.repos.update({("dataset", r): Repo(f, commits.get(r, ())) for r, f in dict(datasets).items()})
        self.requests: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                server._handle(self, head=True)

            def do_GET(self):
                server._handle(self, head=False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def sha(self, repo_type: str, repo: str) -> str:
        return self.repos[(repo_type, repo)].sha

    # --- routing ---------------------------------------------------------------------------------
    def _handle(self, h, head: bool):
        with self._lock:
            self.requests.append(f"{h.command} {h.path}")
            self.authorization.append(h.headers.get("Authorization"))
        url = urlsplit(h.path)
        parts = url.path.strip("/").split("/")
        try:
            if parts[0] == "api":
                repo_type = {"models": "model", "datasets": "dataset"}[parts[1]]
                repo, verb, rest = "/".join(parts[2:4]), parts[4], parts[5:]
                if verb == "revision":
                    return self._info(h, repo_type, repo, unquote(rest[0]))
                if verb == "tree":
                    query = parse_qs(url.query)
                    return self._tree(h, repo_type, repo, unquote(rest[0]), unquote("/".join(rest[1:])), query)
            else:
                repo_type = "dataset" if parts[0] == "datasets" else "model"
                parts = parts[1:] if parts[0] == "datasets" else parts
                if parts[2] == "resolve":
                    return self._resolve(
                        h, repo_type, "/".join(parts[:2]), unquote(parts[3]), "/".join(parts[4:]), head
                    )
        except (IndexError, KeyError):
            pass
        self._json(h, 404, {"error": f"not found: {h.path}"}, headers={"X-Error-Code": "RepoNotFound"})

    def _repo(self, h, repo_type, repo, revision):
        if (repo_type, repo) in self.refuse:
            message = f"Access to {repo} is restricted; the token {h.headers.get('Authorization')} is not authorised."
            self._json(h, 403, {"error": message}, headers={"X-Error-Message": message})  # HEAD: the header
            return None
        r = self.repos.get((repo_type, repo))
        if r is None:
            self._json(h, 404, {"error": "Repository not found"}, headers={"X-Error-Code": "RepoNotFound"})
            return None
        if not r.resolve(revision):
            self._json(h, 404, {"error": "Invalid rev id"}, headers={"X-Error-Code": "RevisionNotFound"})
            return None
        return r

    def _info(self, h, repo_type, repo, revision):
        r = self._repo(h, repo_type, repo, revision)
        if r:
            siblings = [{"rfilename": p} for p in r.files]
            sha = revision if revision in r.commits else r.sha
            self._json(h, 200, {"id": repo, "_id": repo, "sha": sha, "private": False, "siblings": siblings})

    def _tree(self, h, repo_type, repo, revision, folder, query):
        r = self._repo(h, repo_type, repo, revision)
        if not r:
            return
        prefix = folder.rstrip("/") + "/" if folder else ""
        recursive = query.get("recursive", ["False"])[0].lower() == "true"
        entries = []
        for path, data in r.files.items():
            if not path.startswith(prefix) or (not recursive and "/" in path[len(prefix) :]):
                continue
            entry = {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
            if path.endswith(".parquet") or path.endswith(".safetensors"):  # what the Hub stores in LFS
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            entries.append(entry)
        if not entries:
            return self._json(h, 404, {"error": f"{folder} not found"}, headers={"X-Error-Code": "EntryNotFound"})
        start = int(query.get("cursor", ["0"])[0])
        page = entries[start : start + self.page_size]
        headers = {}
        if start + self.page_size < len(entries):
            base = f"{self.url}{urlsplit(h.path).path}"
            headers["Link"] = f'<{base}?expand=True&cursor={start + self.page_size}>; rel="next"'
        self._json(h, 200, page, headers=headers)

    def _resolve(self, h, repo_type, repo, revision, path, head):
        r = self._repo(h, repo_type, repo, revision)
        if not r:
            return
        if path not in r.files:
            return self._json(h, 404, {"error": "Entry not found"}, headers={"X-Error-Code": "EntryNotFound"})
        data = r.files[path]
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.send_header("X-Repo-Commit", revision if revision in r.commits else r.sha)
        h.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        h.end_headers()
        if not head:
            h.wfile.write(data)

    @staticmethod
    def _json(h, status, obj, headers=None):
        body = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
