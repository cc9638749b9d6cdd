"""Fetch one FineWeb2 shard listed in the manifest (Hub or local mirror) and verify it.

    python scripts/download_fineweb_shard.py --manifest data/fineweb2-deu_Latn.manifest.tsv \
        --shard train-000_00000 --repo HuggingFaceFW/fineweb-2 --revision af9c133... \
        --out data/fineweb2/train-000_00000.parquet
"""

import argparse

from _cli import setup_logging
from definemed.dataset.fineweb import fetch_shard, read_manifest

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--manifest", required=True)
p.add_argument("--shard", required=True)
p.add_argument("--repo", required=True)
p.add_argument("--revision", required=True)
p.add_argument("--local-dir", default=None, help="mirror of the dataset repository")
p.add_argument("--out", required=True)
args = p.parse_args()

entries = {e.shard: e for e in read_manifest(args.manifest)}
if args.shard not in entries:
    raise SystemExit(f"{args.manifest}: no shard named {args.shard!r}")
fetch_shard(entries[args.shard], args.out, args.repo, args.revision, args.local_dir or None)
log.info("%s verified -> %s", entries[args.shard].path, args.out)
