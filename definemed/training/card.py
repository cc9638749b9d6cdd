"""The model card (README.md) a continually pre-trained model is saved with: its base, its data
and how it was trained, from the packed corpus's stats and the run's summary (paper 4.2)."""

from __future__ import annotations

from definemed.model_facts import model_fingerprint
from definemed.training.cpt import CptSettings


def model_card(run: str, base, packed, stats: dict, summary: dict, settings: CptSettings) -> str:
    """`base` and `packed` are the folders of the instruct base and the packed corpus, `stats` the
    packed corpus's stats.json; the card names the base's Hub repo where its fetch recorded one."""
    base_model = model_fingerprint(base).get("hub", {}).get("repo", base)
    return f"""---
base_model: {base_model}
tags: [medical, german, continual-pretraining, definemed]
---
# {run}

Continual pre-training of `{base}` on `{packed}` (DeFineMed workflow, paper section 4.2).

- data: {stats["documents"]} documents, {stats["tokens"]} tokens, packed into {stats["sequences"]} sequences of
  {stats["sequence_length"]} tokens (EOS between documents; padding {100 * stats["padding_share"]:.2f}%)
- training: {summary["steps"]} optimizer steps of {summary["tokens_per_step"]} tokens ({summary["tokens_seen"]} tokens),
  {settings.epochs} epochs, AdamW lr {settings.learning_rate} with linear decay after {settings.warmup_steps}
  warm-up steps, weight decay {settings.weight_decay}
- hardware: {summary["world_size"]} x {summary["device"]}, attention {summary["attention"]}
  ({summary["attention_kernel"]} in {summary["compute_dtype"]})
- FSDP mixed precision: {summary["fsdp_mixed_precision"]}
- rotary buffers during training: {summary["rotary_buffer_dtypes"]}
"""
