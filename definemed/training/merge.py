"""SLERP merge of a continually pre-trained model with its instruct base (paper 4.3, A.4),
through mergekit, with checks before (same architecture and shapes) and after (dtype, tokenizer,
chat template, the model loads and generates)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import numpy as np

from definemed.config import Settings

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


@dataclasses.dataclass(frozen=True)
class MergeSettings(Settings):
    """The merge section (A.4), with the day chat templates print (the merged model's check
    renders a prompt)."""

    SECTION: ClassVar[str] = "merge"
    t: list[dict]
    dtype: str
    resources: dict
    chat_template_date: str = dataclasses.field(metadata={"schema": "chat_template_date"})


def merge_config(base: str, cpt: str, num_layers: int, settings: MergeSettings) -> dict:
    """The A.4 configuration with the models and depth filled in."""
    return {
        "slices": [
            {
                "sources": [
                    {"model": base, "layer_range": [0, num_layers]},
                    {"model": cpt, "layer_range": [0, num_layers]},
                ]
            }
        ],
        "merge_method": "slerp",
        "base_model": base,
        "parameters": {"t": settings.t},
        "dtype": settings.dtype,
        # mergekit writes float32 unless told otherwise (seen here); the paper's dtype is meant
        "out_dtype": settings.dtype,
    }


def layer_t(schedule: list, layer: int, num_layers: int) -> float:
    """t of one layer under a gradient schedule: anchors spread evenly over the depth."""
    if not isinstance(schedule, list):
        return float(schedule)
    if len(schedule) == 1 or num_layers == 1:
        return float(schedule[0])
    pos = layer / (num_layers - 1) * (len(schedule) - 1)
    return float(np.interp(pos, np.arange(len(schedule)), schedule))


def check_compatible(base, cpt) -> int:
    """Refuse to merge models that differ in architecture, depth or vocabulary; return the depth."""
    from transformers import AutoConfig

    a, b = AutoConfig.from_pretrained(base), AutoConfig.from_pretrained(cpt)
    for key in ("architectures", "num_hidden_layers", "hidden_size", "vocab_size", "intermediate_size"):
        if getattr(a, key, None) != getattr(b, key, None):
            raise ValueError(
                f"cannot merge {cpt} into {base}: {key} differs ({getattr(b, key, None)} vs {getattr(a, key, None)})"
            )
    shapes = [_embedding_shape(m) for m in (base, cpt)]
    if shapes[0] != shapes[1]:
        raise ValueError(f"cannot merge {cpt} into {base}: embedding shapes {shapes[1]} vs {shapes[0]}")
    return a.num_hidden_layers


def _embedding_shape(model_dir):
    from safetensors import safe_open

    for f in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(f, "pt") as st:
            for name in st.keys():  # noqa: SIM118 (safe_open has no __iter__)
                if name.endswith("embed_tokens.weight"):
                    return tuple(st.get_slice(name).get_shape())
    raise ValueError(f"{model_dir}: no embed_tokens weight found")


def _source(model_dir) -> dict | None:
    """A model folder's definemed-source.json (model_facts.model_fingerprint), or None if unreadable."""
    from definemed.model_facts import model_fingerprint

    try:
        return model_fingerprint(model_dir)
    except (OSError, ValueError):
        return None


def producing_rule(model_dir) -> str:
    """The workflow rule that writes a model folder, read from its definemed-source.json."""
    source = _source(model_dir)
    if source is None:
        return "the rule that produced it (merge_slerp for a merge)"
    if "cpt" in source:
        return "train_cpt"
    if "tiny" in source:
        return "build_tiny_model"
    return "fetch_model" if "hub" in source else "the rule that produced it"


def check_weights(model_dir) -> None:
    """Open every safetensors file of a model folder (the header and its byte ranges: a truncated
    file fails here). Raises ValueError naming the folder and the file, with the advice to delete
    the folder and rerun the rule that made it."""
    from safetensors import safe_open

    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise ValueError(f"damaged model folder {model_dir}: no *.safetensors weights. Delete the folder and rerun"
                         f" the workflow ({producing_rule(model_dir)} writes it again)")  # fmt: skip
    for f in files:
        try:
            with safe_open(f, "pt") as st:
                st.keys()
        except Exception as e:  # safetensors_rust.SafetensorError: incomplete metadata, header too large, ...
            raise ValueError(
                f"damaged model folder {model_dir}: {f.name} does not open ({type(e).__name__}: {e}; {f.stat().st_size}"
                f" bytes, truncated?). Delete the folder {model_dir} and rerun the workflow"
                f" ({producing_rule(model_dir)} writes it again)"
            ) from e


def hub_name(model_dir) -> str:
    """A model folder's Hub repository where it came from the Hub, else its name."""
    source = _source(model_dir) or {}
    return source.get("hub", {}).get("repo") or Path(model_dir).name


def model_card(name: str, base, cpt, cfg: dict) -> str:
    """The merged model's README.md: named after its final folder (mergekit would title it with the
    staging folder it wrote to), with its base (a Hub id where the base came from the Hub) and the
    two merged models in a fixed order, base first (mergekit lists a set: the order varies between
    runs) and no date: the same merge gives the same bytes."""
    import yaml

    bases = [hub_name(base), hub_name(cpt)]
    meta = {
        "base_model": bases,
        "base_model_relation": "merge",
        "library_name": "transformers",
        "tags": ["mergekit", "merge", "slerp", "medical", "german", "definemed"],
    }
    return (
        f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n# {name}\n\n"
        "A SLERP merge (paper section 4.3, appendix A.4) of a continually pre-trained model with its"
        " instruct base, made with [mergekit](https://github.com/arcee-ai/mergekit) by the DeFineMed workflow.\n\n"
        "## Models merged\n\n"
        f"* {bases[0]} (`{base}`): the base, t = 0\n"
        f"* {bases[1]} (`{cpt}`): t = 1\n\n"
        "## Configuration\n\n```yaml\n" + yaml.safe_dump(cfg, sort_keys=False) + "```\n"
    )


def run_slerp(base, cpt, out_dir, settings: MergeSettings, name: str | None = None) -> dict:
    """Merge `cpt` into `base` in out_dir; `name`: the model's final name for its card (default the
    folder's name)."""
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    for model in (base, cpt):
        check_weights(model)
    layers = check_compatible(base, cpt)
    cfg = merge_config(str(base), str(cpt), layers, settings)
    run_merge(
        MergeConfiguration.model_validate(cfg),
        str(out_dir),
        options=MergeOptions(device="cpu", copy_tokenizer=True, lazy_unpickle=False),
    )
    # the base's chat template and generation settings travel with the merge
    for f in ("tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        if (Path(base) / f).exists():
            (Path(out_dir) / f).write_bytes((Path(base) / f).read_bytes())
    (Path(out_dir) / "README.md").write_text(model_card(name or Path(out_dir).name, base, cpt, cfg), encoding="utf-8")
    return cfg


def check_merged(base, merged, dtype: str, template_date: str) -> dict:
    """After the merge: weights in the configured dtype, the base's tokenizer and chat template,
    and a model that loads and generates."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    from definemed.chat import load_tokenizer, user_prompt_ids

    dtypes = set()
    for f in Path(merged).glob("*.safetensors"):
        with safe_open(f, "pt") as st:
            dtypes |= {str(st.get_slice(n).get_dtype()) for n in st.keys()}  # noqa: SIM118
    want = {"float16": "F16", "bfloat16": "BF16", "float32": "F32"}[dtype]
    if dtypes != {want}:
        raise ValueError(f"{merged}: weights are {sorted(dtypes)}, expected {want}")
    for name in TOKENIZER_FILES:
        if not (Path(merged) / name).exists():
            raise ValueError(f"{merged}: {name} missing after the merge")
    tok_base, tok = load_tokenizer(base), load_tokenizer(merged)
    if tok.chat_template != tok_base.chat_template:
        raise ValueError(f"{merged}: chat template differs from the base's")
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
    ids = torch.tensor([user_prompt_ids(tok, "Was ist Bluthochdruck?", template_date)])
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=8,
        do_sample=False,
        pad_token_id=tok.pad_token_id or tok.eos_token_id,
    )
    return {"dtype": want, "generated_tokens": int(out.shape[1] - ids.shape[1])}
