"""SLERP-merge a continually pre-trained model with its instruct base through mergekit (paper 4.3, A.4).

    python scripts/merge_slerp.py --base models/qwen2.5-7b-instruct --cpt models/definemed-qwen2.5-7b \
        --settings '<merge section as JSON>' --out models/definemed-qwen2.5-7b-slerp \
        --out-config results/merges/definemed-qwen2.5-7b-slerp/mergekit.yml \
        --out-check results/merges/definemed-qwen2.5-7b-slerp/check.json
"""

import argparse
from pathlib import Path

from _cli import set_torch_threads, setup_logging
from definemed.io import atomic_dir, write_json, write_text
from definemed.training.merge import MergeSettings, check_merged, run_slerp

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--base", required=True)
p.add_argument("--cpt", required=True)
p.add_argument("--settings", required=True)
p.add_argument("--out", required=True)
p.add_argument("--out-config", required=True)
p.add_argument("--out-check", required=True)
p.add_argument("--threads", type=int, default=None)
args = p.parse_args()

import yaml  # noqa: E402

set_torch_threads(args.threads)
settings = MergeSettings.from_json(args.settings)
with atomic_dir(args.out) as tmp:
    cfg = run_slerp(args.base, args.cpt, tmp, settings, name=Path(args.out).name)
    check = check_merged(args.base, tmp, settings.dtype, settings.chat_template_date)
write_text(args.out_config, yaml.safe_dump(cfg, sort_keys=False))
write_json(args.out_check, {"base": args.base, "cpt": args.cpt, **check})
log.info("merged %s into %s -> %s (%s)", args.cpt, args.base, args.out, check["dtype"])
