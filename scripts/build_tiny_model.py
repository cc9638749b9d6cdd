"""Build a tiny random-init model of a real architecture for the miniature (offline, seeded).

    python scripts/build_tiny_model.py --name tiny-qwen --spec '{"tiny": {...}, "chat_template": "qwen2.5"}' \
        --seed 1234 --out miniature/models/tiny-qwen [--labelling '{...}'] [--fixture '{...}']
"""

import argparse
import json

from _cli import set_torch_threads, setup_logging
from definemed.config import validated
from definemed.dataset.labelling import LabellingSettings
from definemed.io import atomic_dir
from definemed.miniature.fixtures import FixtureSettings
from definemed.miniature.tiny_models import build_tiny_model

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--name", required=True)
p.add_argument("--spec", required=True, help="the model's config entry as JSON")
p.add_argument("--seed", type=int, required=True)
p.add_argument("--out", required=True)
p.add_argument("--labelling", help="config section labelling as JSON (needed by fit_labeller)")
p.add_argument("--fixture", help="config section fineweb.fixture as JSON")
p.add_argument("--start-from", help="the built folder of the model tiny.start_from names")
p.add_argument("--threads", type=int, default=None)
args = p.parse_args()

set_torch_threads(args.threads)
with atomic_dir(args.out) as tmp:
    build_tiny_model(
        args.name,
        validated(json.loads(args.spec), "model"),
        tmp,
        args.seed,
        labelling=LabellingSettings.from_json(args.labelling) if args.labelling else None,
        fixture=FixtureSettings.from_json(args.fixture) if args.fixture else None,
        log=log.info,
        start_dir=args.start_from,
    )
log.info("built %s -> %s", args.name, args.out)
