"""Keep a shard's documents whose classifier score reaches the threshold: one FineMed-de part.

    python scripts/filter_shard.py --shard data/fineweb2/train-000_00000.parquet \
        --scores results/scores/train-000_00000.parquet --metrics results/classifier/metrics.json \
        --out results/finemed/train-000_00000.parquet
Streams the shard in blocks of rows; the part keeps FineWeb2's columns plus the score.
"""

import argparse
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from _cli import setup_logging
from definemed.dataset.fineweb import corrupt_shard_named, iter_shard_batches
from definemed.io import atomic_path, read_json

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--shard", required=True)
p.add_argument("--scores", required=True)
p.add_argument("--metrics", required=True, help="classifier metrics JSON holding the chosen threshold")
p.add_argument("--out", required=True)
args = p.parse_args()

threshold = read_json(args.metrics)["threshold"]
scores = pq.read_table(args.scores, columns=["id", "score"])
with corrupt_shard_named(args.shard):
    source_schema = pq.read_schema(args.shard)
schema = source_schema.append(pa.field("score", pa.float32()))
schema = schema.with_metadata({b"definemed": json.dumps({"threshold": threshold, "source": args.shard}).encode()})
kept = offset = 0
with (
    atomic_path(args.out, suffix=".parquet") as tmp,
    pq.ParquetWriter(tmp, schema, compression="zstd") as out,
):
    for batch in iter_shard_batches(args.shard, source_schema.names, 50_000):
        part = scores.slice(offset, batch.num_rows)
        offset += batch.num_rows
        if part.column("id").to_pylist() != batch.column("id").to_pylist():
            raise SystemExit(f"{args.scores}: ids do not match {args.shard} near row {offset}; rescore the shard")
        keep = pc.greater_equal(part.column("score"), threshold)
        table = pa.Table.from_batches([batch]).filter(keep).append_column("score", part.column("score").filter(keep))
        out.write_table(table.cast(schema))
        kept += table.num_rows
if offset != scores.num_rows:
    raise SystemExit(f"{args.scores}: {scores.num_rows} scores for {offset} documents in {args.shard}")
log.info("%s: kept %d of %d documents (threshold %.3f)", args.shard, kept, offset, threshold)
