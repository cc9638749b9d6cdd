"""Manifest, shard verification and sampling."""

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from definemed.dataset.fineweb import ManifestEntry, ShardError, fetch_shard, read_manifest, sample_documents


def write_shard(path, n, start=0, row_group_size=None):
    table = pa.table(
        {
            "id": [f"doc-{i}" for i in range(start, start + n)],
            "text": [f"Text {i}" for i in range(start, start + n)],
        }
    )
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def test_manifest_rows_are_checked(tmp_path):
    good = tmp_path / "m.tsv"
    good.write_text("# comment\nshard\tpath\tsize\tsha256\ntrain-a\tdata/a.parquet\t12\t-\n")
    assert read_manifest(good) == [ManifestEntry("train-a", "data/a.parquet", 12, None)]
    dup = tmp_path / "dup.tsv"
    dup.write_text("shard\tpath\tsize\tsha256\na\tx\t-\t-\na\ty\t-\t-\n")
    with pytest.raises(ValueError, match=r"dup.tsv: row 3: .*duplicate"):
        read_manifest(dup)
    bad = tmp_path / "bad.tsv"
    bad.write_text("shard\tpath\tsize\tsha256\na\tx\tbig\t-\n")
    with pytest.raises(ValueError, match=r"bad.tsv: row 2: size 'big'"):
        read_manifest(bad)


def test_corrupted_shard_is_refused_with_its_file_named(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "data").mkdir(parents=True)
    src = write_shard(mirror / "data" / "000.parquet", 50)
    data = src.read_bytes()
    entry = ManifestEntry("train-000", "data/000.parquet", len(data), hashlib.sha256(data).hexdigest())
    out = tmp_path / "shards" / "train-000.parquet"
    fetch_shard(entry, out, "repo/x", "rev", local_dir=mirror)
    assert out.read_bytes() == data

    # flip bytes in the middle: same size, wrong checksum
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF
    src.write_bytes(bytes(damaged))
    out2 = tmp_path / "shards" / "train-001.parquet"
    with pytest.raises(ShardError, match=r"train-001\.parquet.*sha256.*data/000\.parquet"):
        fetch_shard(entry, out2, "repo/x", "rev", local_dir=mirror)
    assert not out2.exists()
    assert not list(out2.parent.glob(".*tmp"))  # no half file left behind

    # truncated, unknown checksum: the parquet check names the file
    src.write_bytes(data[: len(data) // 2])
    entry_unknown = ManifestEntry("train-000", "data/000.parquet", None, None)
    with pytest.raises(ShardError, match=r"train-002\.parquet.*not a readable parquet"):
        fetch_shard(entry_unknown, tmp_path / "shards" / "train-002.parquet", "r", "v", local_dir=mirror)


def test_sample_is_seeded_uniform_and_reads_across_shards(tmp_path):
    paths = [write_shard(tmp_path / f"s{i}.parquet", 300, start=300 * i, row_group_size=64) for i in range(3)]
    a = sample_documents(paths, 200, seed=7)
    b = sample_documents(paths, 200, seed=7)
    c = sample_documents(paths, 200, seed=8)
    assert a.equals(b) and not a.equals(c)
    ids = a.column("id").to_pylist()
    assert len(set(ids)) == 200
    per_shard = [sum(int(i.split("-")[1]) // 300 == s for i in ids) for s in range(3)]
    assert all(40 <= k <= 100 for k in per_shard), per_shard
    # texts stay attached to their ids
    assert all(t == f"Text {i.split('-')[1]}" for i, t in zip(ids, a.column("text").to_pylist()))
    with pytest.raises(ValueError, match="exceeds the 900 documents"):
        sample_documents(paths, 901, seed=7)
