"""Pin every external input of a config to a commit (needs the Hub): writes inputs.lock.yaml and
rewrites the FineWeb2 manifest with every file of the split, its size and sha256.

    python scripts/lock_inputs.py                         # config.yaml -> inputs.lock.yaml (make lock)
    python scripts/lock_inputs.py --configfile my.yaml --lock my.lock.yaml

Revisions already given as commits in the config are confirmed; branches (`main`) are resolved
at the moment of locking. Uses huggingface_hub's HfApi (HF_ENDPOINT and HF_TOKEN from the
environment). Commit both files: the run reads its revisions and shard list from them.
"""

import argparse
import os

from _cli import setup_logging
from definemed.config import load
from definemed.inputs import LOCK_FILE, OFFLINE_ENV, LockError, build_lock, lock_text
from definemed.io import write_text

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--configfile", default="config.yaml")
p.add_argument("--lock", default=LOCK_FILE)
p.add_argument("--language", default="deu_Latn", help="FineWeb2 language config")
args = p.parse_args()

for switch in OFFLINE_ENV:  # before huggingface_hub is imported: it reads them once, at import
    if os.environ.get(switch, "0") not in ("", "0"):
        raise SystemExit(f"{switch} is set: locking needs the Hub")

from huggingface_hub import HfApi  # noqa: E402

config = load(args.configfile)
try:
    lock, manifest = build_lock(config, HfApi(), language=args.language)
except LockError as e:  # the config key and the repository, without a traceback; nothing written
    raise SystemExit(f"{args.configfile}: {e}\nNothing was written ({args.lock} unchanged).") from None
if manifest is not None:
    write_text(config["fineweb"]["manifest"], manifest)
    log.info("%s: %d files", config["fineweb"]["manifest"], lock["datasets"]["fineweb"]["files"])
write_text(args.lock, lock_text(lock))
pinned = len(lock["models"]) + len(lock["datasets"]) + len(lock.get("lm_eval", {}).get("datasets", {}))
log.info("%d repositories pinned -> %s", pinned, args.lock)
