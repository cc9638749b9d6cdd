"""Download one MedAlpaca (medical meadow) subset at a pinned revision as JSONL {id, question, answer}.

    python scripts/fetch_medalpaca.py --repo medalpaca/medical_meadow_wikidoc_patient_information \
        --revision <sha> --file medical_meadow_wikidoc_patient_information.json --out data/medalpaca/source.jsonl
"""

import argparse
import json
import tempfile

from _cli import setup_logging
from definemed.io import write_jsonl
from definemed.judges.generation import medalpaca_rows

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--repo", required=True)
p.add_argument("--revision", required=True)
p.add_argument("--file", required=True)
p.add_argument("--out", required=True)
args = p.parse_args()

from huggingface_hub import hf_hub_download  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    path = hf_hub_download(args.repo, args.file, repo_type="dataset", revision=args.revision, local_dir=tmp)
    with open(path, encoding="utf-8") as f:
        text = f.read()
try:
    records = json.loads(text)
except json.JSONDecodeError:  # JSON lines
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
rows = medalpaca_rows(records, args.repo.split("/")[-1])
write_jsonl(args.out, rows)
log.info("%s@%s: %d records, %d with a question -> %s", args.repo, args.revision, len(records), len(rows), args.out)
