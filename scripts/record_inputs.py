"""Write the run's record of its external inputs (rules/inputs.smk: every pinned repository and
commit, the lm-eval datasets, and which FineWeb2 files the run reads, a deliberate subset included).

    python scripts/record_inputs.py --record '<JSON>' --out results/inputs.json
"""

import argparse
import json

from _cli import setup_logging
from definemed.io import write_json

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--record", required=True)
p.add_argument("--out", required=True)
args = p.parse_args()

record = json.loads(args.record)
write_json(args.out, record)
files = record.get("fineweb_files")
if files and files["shard_subset"]:
    log.warning("a deliberate subset: %d of %d FineWeb2 files", files["read"], files["listed"])
log.info("-> %s", args.out)
