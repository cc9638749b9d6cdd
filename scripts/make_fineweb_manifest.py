"""List a FineWeb2 language's train shards at a pinned revision as a manifest TSV (needs the Hub).

    python scripts/make_fineweb_manifest.py --revision af9c133... > data/fineweb2-deu_Latn.manifest.tsv
Sizes and sha256 come from the Hub's LFS metadata; the download rule verifies both.
"""

import argparse
import sys

from _cli import setup_logging

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--repo", default="HuggingFaceFW/fineweb-2")
p.add_argument("--revision", required=True)
p.add_argument("--language", default="deu_Latn")
p.add_argument("--split", default="train")
args = p.parse_args()

from huggingface_hub import HfApi  # noqa: E402

folder = f"data/{args.language}/{args.split}"
files = sorted(
    (
        f
        for f in HfApi().list_repo_tree(
            args.repo, path_in_repo=folder, repo_type="dataset", revision=args.revision, expand=True
        )
        if f.path.endswith(".parquet")
    ),
    key=lambda f: f.path,
)
out = sys.stdout
out.write(f"# {args.repo} ({args.language}), revision {args.revision}: {len(files)} {args.split} files.\n")
out.write("shard\tpath\tsize\tsha256\n")
for f in files:
    name = f"{args.split}-" + f.path.rsplit("/", 1)[1].removesuffix(".parquet")
    sha = f.lfs.sha256 if getattr(f, "lfs", None) else "-"
    out.write(f"{name}\t{f.path}\t{f.size}\t{sha}\n")
log.info("%d files listed", len(files))
