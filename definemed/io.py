"""Crash-safe file output: everything is written to a temporary name in the target folder and
renamed into place, so a killed job never leaves a half-written file under the final name."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(path) -> list[dict]:
    """The rows of a JSON-lines file; blank lines are skipped, a line that is not JSON stops with the
    file and line named."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}: line {n} is not JSON ({e})") from None
    return rows


def write_jsonl(path, rows, *, sort_keys: bool = False, ensure_ascii: bool = False) -> None:
    write_text(path, "".join(json.dumps(r, sort_keys=sort_keys, ensure_ascii=ensure_ascii) + "\n" for r in rows))


def write_parquet(path, table: pa.Table, metadata: dict | None = None) -> None:
    """Write `table` atomically; `metadata` (JSON-serialisable) goes into the schema metadata."""
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged[b"definemed"] = json.dumps(metadata, sort_keys=True).encode()
        table = table.replace_schema_metadata(merged)
    with atomic_path(path, suffix=".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")


def parquet_metadata(path) -> dict:
    """The `definemed` metadata written by write_parquet, or {}."""
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(b"definemed")
    return json.loads(raw) if raw else {}


def sha256_file(path, block: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, owner: bool = True):
    """Yield a fresh temporary folder beside `path`; it replaces `path` only if the block succeeds.
    A partial folder of an earlier killed attempt (same name + .partial) is handed back for reuse,
    so downloads that resume (huggingface_hub's local_dir) pick up where they stopped.
    owner=False (the other ranks of a distributed job): the same folder, neither made nor renamed,
    so that a rank leaving the block first cannot move it away under the owner's writes."""
    import shutil

    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    if not owner:
        yield tmp
        return
    tmp.mkdir(parents=True, exist_ok=True)
    yield tmp
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def claim_work_dir(work_dir, request: dict) -> bool:
    """Prepare a folder of resumable state (checkpoints, chunks) for `request`: state left by a job
    with the same request is kept for resuming; state of a different request (other data,
    settings or model) is removed, so that it can never leak into this run. Returns True when
    earlier state was kept."""
    import shutil

    work_dir = Path(work_dir)
    stamp = work_dir / "request.json"
    text = json.dumps(request, sort_keys=True, indent=1)
    if work_dir.exists():
        if stamp.exists() and stamp.read_text() == text:
            return True
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    stamp.write_text(text)
    return False


def drop_load_flags(model_dir) -> None:
    """Remove what transformers records in tokenizer_config.json about how the tokenizer was
    *loaded* ("local_files_only": true when HF_HUB_OFFLINE was set): the saved files then do not
    depend on the environment of the job."""
    path = Path(model_dir) / "tokenizer_config.json"
    if not path.exists():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    if "local_files_only" in config:
        del config["local_files_only"]
        write_text(path, json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
