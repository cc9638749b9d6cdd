"""Download a Hub model at a pinned revision into a local folder (resumes a killed download).

    python scripts/fetch_model.py --name qwen2.5-7b-instruct --repo Qwen/Qwen2.5-7B-Instruct \
        --revision a09a354... --out models/qwen2.5-7b-instruct
HF_TOKEN is read from the environment by huggingface_hub; it is never logged.
"""

import argparse
import json
import re

from _cli import setup_logging
from definemed.io import atomic_dir
from definemed.model_facts import SOURCE_FILE

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--name", required=True)
p.add_argument("--repo", required=True)
p.add_argument("--revision", required=True)
p.add_argument("--out", required=True)
args = p.parse_args()

from huggingface_hub import snapshot_download  # noqa: E402

if not re.fullmatch(r"[0-9a-f]{40}", args.revision):
    log.warning("%s: revision %r is not a commit SHA; the download is not reproducible", args.repo, args.revision)
with atomic_dir(args.out) as tmp:
    snapshot_download(
        repo_id=args.repo,
        revision=args.revision,
        local_dir=tmp,
        allow_patterns=[
            "*.json",
            "*.safetensors",
            "*.model",
            "*.txt",
            "*.jinja",
            "tokenizer*",
            "*.py",
            "*.md",
        ],
        # Mistral repositories also ship consolidated.safetensors (mistral-inference format): a
        # second full copy of the weights that transformers never reads
        ignore_patterns=["consolidated*", "original/*"],
    )
    if not (tmp / "config.json").exists():
        raise SystemExit(f"{args.repo}@{args.revision}: no config.json; not a transformers model")
    if not any(tmp.glob("*.safetensors")):
        raise SystemExit(f"{args.repo}@{args.revision}: no safetensors weights")
    (tmp / SOURCE_FILE).write_text(
        json.dumps({"name": args.name, "hub": {"repo": args.repo, "revision": args.revision}}, indent=2) + "\n"
    )
log.info("%s@%s -> %s", args.repo, args.revision, args.out)
