"""FineWeb2 German shards: the manifest, download with verification, and seeded sampling."""

from __future__ import annotations

import contextlib
import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from definemed.io import atomic_path, sha256_file, write_parquet

# FineWeb2's columns (dataset card, config deu_Latn). Fixture shards use the same schema.
SCHEMA = pa.schema(
    [
        ("text", pa.string()),
        ("id", pa.string()),
        ("dump", pa.string()),
        ("url", pa.string()),
        ("date", pa.string()),
        ("file_path", pa.string()),
        ("language", pa.string()),
        ("language_score", pa.float64()),
        ("language_script", pa.string()),
        ("minhash_cluster_size", pa.int64()),
        ("top_langs", pa.string()),
    ]
)
REQUIRED_COLUMNS = ("id", "text")


class ShardError(ValueError):
    """A shard that is missing, corrupted or not in FineWeb2's layout; the message names the file."""


@dataclass(frozen=True)
class ManifestEntry:
    shard: str  # name used in output paths, e.g. "train-000_00000"
    path: str  # path inside the dataset repository
    size: int | None
    sha256: str | None


def read_manifest(path) -> list[ManifestEntry]:
    """Read a TSV manifest (columns shard, path, size, sha256; '-' or empty for unknown)."""
    entries, seen = [], set()
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t")
        missing = {"shard", "path", "size", "sha256"} - set(rows.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: manifest lacks column(s) {sorted(missing)}")
        for lineno, row in enumerate(rows, start=2):
            shard = row["shard"].strip()
            if not shard or shard in seen:
                raise ValueError(f"{path}: row {lineno}: empty or duplicate shard name {shard!r}")
            seen.add(shard)
            size = row["size"].strip()
            sha = row["sha256"].strip().lower()
            try:
                size_val = int(size) if size not in ("", "-") else None
            except ValueError:
                raise ValueError(f"{path}: row {lineno}: size {size!r} is not an integer") from None
            if sha not in ("", "-") and len(sha) != 64:
                raise ValueError(f"{path}: row {lineno}: sha256 {sha!r} is not 64 hex digits")
            entries.append(ManifestEntry(shard, row["path"].strip(), size_val, sha if sha not in ("", "-") else None))
    if not entries:
        raise ValueError(f"{path}: manifest lists no shards")
    return entries


def verify_shard(path, entry: ManifestEntry | None = None) -> int:
    """Check size and checksum against the manifest (where known) and that the file is a readable
    parquet file with FineWeb2's id/text columns. Returns the row count."""
    path = Path(path)
    if not path.exists():
        raise ShardError(f"{path}: shard file does not exist")
    if entry is not None and entry.size is not None and path.stat().st_size != entry.size:
        raise ShardError(
            f"{path}: size {path.stat().st_size} differs from the manifest's {entry.size} "
            f"({entry.path}); the download is incomplete or corrupted"
        )
    if entry is not None and entry.sha256 is not None:
        actual = sha256_file(path)
        if actual != entry.sha256:
            raise ShardError(f"{path}: sha256 {actual} differs from the manifest's {entry.sha256} ({entry.path})")
    try:
        meta = pq.read_metadata(path)
        names = set(meta.schema.names)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise ShardError(f"{path}: not a readable parquet file ({exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise ShardError(f"{path}: lacks FineWeb2 column(s) {missing}")
    return meta.num_rows


def fetch_shard(entry: ManifestEntry, out, repo_id: str, revision: str, local_dir=None) -> None:
    """Copy a shard from a local mirror of the dataset or download it from the Hub, verify it, and
    only then move it to `out`. HF_TOKEN is read by huggingface_hub from the environment."""
    with atomic_path(out, suffix=".parquet") as tmp:
        if local_dir:
            src = Path(local_dir) / entry.path
            if not src.exists():
                raise ShardError(f"{src}: not found in the local mirror {local_dir}")
            shutil.copyfile(src, tmp)
        else:
            from huggingface_hub import hf_hub_download

            cached = hf_hub_download(repo_id=repo_id, filename=entry.path, repo_type="dataset", revision=revision)
            shutil.copyfile(cached, tmp)
        try:
            verify_shard(tmp, entry)
        except ShardError as exc:
            raise ShardError(str(exc).replace(str(tmp), f"{out} (from {entry.path})")) from None


def sample_documents(shard_paths: list, n: int, seed: int, columns=("id", "text")) -> pa.Table:
    """A seeded uniform sample of `n` documents without replacement across all shards.

    Only the row groups that hold sampled rows are read, so the cost grows with `n`, not with the
    corpus. The result is ordered by (shard, row), which keeps it independent of read order."""
    counts = [verify_shard(p) for p in shard_paths]
    total = sum(counts)
    if n > total:
        raise ValueError(f"sample size {n} exceeds the {total} documents in {len(shard_paths)} shards")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(total, size=n, replace=False))
    offsets = np.cumsum([0, *counts])
    parts = []
    for i, path in enumerate(shard_paths):
        lo, hi = np.searchsorted(chosen, [offsets[i], offsets[i + 1]])
        rows = chosen[lo:hi] - offsets[i]
        if len(rows):
            parts.append(_take_rows(path, rows, columns))
    return pa.concat_tables(parts)


def _take_rows(path, rows: np.ndarray, columns) -> pa.Table:
    with corrupt_shard_named(path):
        pf = pq.ParquetFile(path)
        starts = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
        parts = []
        for g in range(pf.num_row_groups):
            lo, hi = np.searchsorted(rows, [starts[g], starts[g + 1]])
            if hi > lo:
                group = pf.read_row_group(g, columns=list(columns))
                parts.append(group.take(pa.array(rows[lo:hi] - starts[g])))
    return pa.concat_tables(parts)


@contextlib.contextmanager
def corrupt_shard_named(path):
    """Turn pyarrow's errors for a damaged file (a bare `OSError: ZSTD decompression failed`, an
    ArrowInvalid) into a ShardError that names the shard: a file can rot on disk after its
    download was verified."""
    try:
        yield
    except FileNotFoundError:
        raise  # missing, not corrupt: the error names the file already
    except (OSError, pa.ArrowException) as exc:
        raise ShardError(
            f"{path}: corrupt shard ({type(exc).__name__}: {exc}); delete it and rerun to fetch it again"
        ) from exc


def iter_shard_batches(path, columns, batch_size: int):
    """A shard's record batches; a damaged file raises ShardError naming it."""
    with corrupt_shard_named(path):
        yield from pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=list(columns))


def write_sample(path, table: pa.Table, seed: int, shards: list) -> None:
    write_parquet(path, table, metadata={"seed": seed, "shards": [str(s) for s in shards]})
