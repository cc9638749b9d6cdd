"""Generate one model's responses to the judge queries (paper 5.2, A.7.1).

    python scripts/generate_responses.py --model definemed-qwen2.5-7b-slerp \
        --model-dir models/definemed-qwen2.5-7b-slerp --template-dir models/qwen2.5-7b-instruct \
        --queries results/medalpaca/queries.jsonl --settings '<generation section as JSON>' \
        --seed 42 --display DeFineMed-Qwen2.5-7B-SLERP --out results/generations/definemed-qwen2.5-7b-slerp.jsonl
"""

import argparse

from _cli import set_torch_threads, setup_logging
from definemed.io import read_jsonl, write_jsonl
from definemed.judges.generation import GenerationSettings, generate
from definemed.model_facts import weights_sha256

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--model", required=True)
p.add_argument("--model-dir", required=True)
p.add_argument("--template-dir", required=True, help="the base instruct model whose chat template is used")
p.add_argument("--queries", required=True)
p.add_argument("--settings", required=True, help="the generation section as the model's job reads it, JSON")
p.add_argument("--seed", type=int, required=True, help="config seed")
p.add_argument("--display", default=None)
p.add_argument("--threads", type=int, default=None)
p.add_argument("--out", required=True)
args = p.parse_args()

set_torch_threads(args.threads)
settings = GenerationSettings.from_json(args.settings)
rows = generate(
    args.model,
    args.model_dir,
    args.template_dir,
    read_jsonl(args.queries),
    settings,
    args.seed,
    args.display or args.model,
)
weights = weights_sha256(args.model_dir)  # which weights wrote these responses (judged in 5.2, 5.3)
write_jsonl(args.out, ({**r, "model_weights_sha256": weights} for r in rows))
cut = sum(r["finish_reason"] == "length" for r in rows)
log.info("%d responses (%d cut at max_new_tokens) -> %s", len(rows), cut, args.out)
