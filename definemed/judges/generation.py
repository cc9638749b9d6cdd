"""Response generation for the judges (paper 5.2, A.7.1) and the MedAlpaca-de queries.

Each model answers each query as the single user turn of its base instruct model's chat template,
with no system prompt, rendered by definemed.chat the same way for both backends; each response
records the hash of the prompt's token ids. Decoding settings come from config (a job reads them
as GenerationSettings) and are recorded with every response.
Models (5.2: "the base instruction-tuned models and the final merged checkpoints"): by default the
instruct bases of the CPT runs on FineMed-de and those runs' SLERP merges, in family order
(base, merge); the FineWeb2 ablation (A.5, evaluated on benchmarks only) is left out unless
`generation.corpora` or `generation.models` name it.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from definemed.chat import load_tokenizer, prompt_sha256, user_prompt_ids
from definemed.config import Settings, subschema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VllmGenerationSettings(Settings):
    """The vLLM engine of one generation job: generation.vllm with the model's tensor-parallel
    degree (generation.tensor_parallel of its instruct base)."""

    SECTION = "generation.vllm"
    gpu_memory_utilization: float
    max_model_len: int
    dtype: str
    tensor_parallel_size: int = field(metadata={"schema": "$defs.tensor_parallel_size"})


@dataclass(frozen=True)
class GenerationSettings(Settings):
    """The generation section as one model's job reads it (generation_settings): decoding, batch,
    engine, and the day chat templates print."""

    SECTION = "generation"
    models: list[str] | None
    corpora: list[str]
    backend: str
    max_new_tokens: int
    temperature: float
    top_p: float
    batch_size: int
    vllm: VllmGenerationSettings
    resources: dict
    chat_template_date: str = field(metadata={"schema": "chat_template_date"})


def generation_models(config: dict) -> list[str]:
    """The models of Figures 2 and 3, in plot order."""
    gen = config["generation"]
    if gen["models"]:
        return list(gen["models"])
    out: list[str] = []
    for run, spec in config["cpt"]["runs"].items():
        if spec["corpus"] not in gen["corpora"]:
            continue
        for name in (spec["base"], f"{run}-slerp"):
            if name not in out:
                out.append(name)
    return out


def instruct_base(config: dict, name: str) -> str:
    """The instruct model whose chat template `name` answers in (A.7.1)."""
    runs = config["cpt"]["runs"]
    if name in config["models"]:
        return name
    run = name[: -len("-slerp")] if name.endswith("-slerp") else name
    if run not in runs:
        raise KeyError(f"{name!r} is neither a model, a CPT run nor a merge '<run>-slerp'")
    return runs[run]["base"]


def tensor_parallel(config: dict, name: str) -> int:
    """GPUs of `name`'s generation job under the vllm backend, its vLLM tensor-parallel degree:
    `generation.tensor_parallel` of its instruct base (a base, its CPT runs and their merges share
    one shape), 1 where the base is not listed; the transformers backend: 1."""
    gen = config["generation"]
    single = subschema("$defs.tensor_parallel_size")["default"]
    if gen["backend"] != "vllm":
        return single
    return int(gen["tensor_parallel"].get(instruct_base(config, name), single))


def generation_settings(config: dict, name: str) -> dict:
    """The generation section as `name`'s job reads it (the JSON its rule passes, read there as
    GenerationSettings): with the day chat templates print and, under vllm, the model's
    tensor-parallel degree as `vllm.tensor_parallel_size`."""
    gen = {k: v for k, v in config["generation"].items() if k != "tensor_parallel"}
    if gen["backend"] == "vllm":
        gen["vllm"] = {**gen["vllm"], "tensor_parallel_size": tensor_parallel(config, name)}
    return {**gen, "chat_template_date": config["chat_template_date"]}


# -- queries --------------------------------------------------------------------------------------
def medalpaca_rows(records: list[dict], subset: str) -> list[dict]:
    """MedAlpaca (medical meadow) records {instruction, input, output} as {id, question, answer}:
    the question is `input` (falling back to `instruction` where `input` is empty)."""
    rows = []
    for i, r in enumerate(records):
        question = (r.get("input") or "").strip() or (r.get("instruction") or "").strip()
        answer = (r.get("output") or "").strip()
        if question:
            rows.append({"id": f"{subset}-{i:06d}", "question": question, "answer": answer})
    return rows


def sample_rows(rows: list[dict], n: int, seed: int) -> list[dict]:
    """A seeded sample of n rows in their original order (all rows when n >= len(rows))."""
    if n >= len(rows):
        return list(rows)
    keep = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in keep]


def check_queries(rows: list[dict]) -> list[dict]:
    """A user-supplied query file: JSONL with id and query (German), optional context."""
    seen = set()
    for i, r in enumerate(rows):
        if not isinstance(r.get("query"), str) or not r["query"].strip():
            raise ValueError(f"query file row {i}: needs a non-empty string 'query'")
        r.setdefault("id", f"q-{i:06d}")
        r["id"] = str(r["id"])
        if r["id"] in seen:
            raise ValueError(f"query file row {i}: duplicate id {r['id']!r}")
        seen.add(r["id"])
        r.setdefault("context", "")
    return rows


# -- generation -----------------------------------------------------------------------------------
def generate_transformers(
    model_dir, tokenizer, encoded: list[list[int]], settings: GenerationSettings, seed: int
) -> list[dict]:
    import torch
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.bfloat16 if device == "cuda" else torch.float32
    ).to(device)
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = tokenizer.eos_token_id
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    results: list[dict | None] = [None] * len(encoded)
    temperature = settings.temperature
    sampling = {"do_sample": False} if temperature == 0 else {"do_sample": True, "temperature": temperature}
    if temperature:
        sampling["top_p"] = settings.top_p
    torch.manual_seed(seed)
    bs = settings.batch_size
    for start in range(0, len(order), bs):
        idx = order[start : start + bs]
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
            mask[row, width - len(encoded[i]) :] = 1
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=settings.max_new_tokens,
                pad_token_id=pad,
                eos_token_id=eos,
                **({"top_p": None, "top_k": None} if temperature == 0 else {}),
                **sampling,
            )
        for row, i in enumerate(idx):
            new = out[row, width:].tolist()
            finished = eos in new
            if finished:
                new = new[: new.index(eos)]
            results[i] = {
                "response": tokenizer.decode(new, skip_special_tokens=True).strip(),
                "prompt_tokens": len(encoded[i]),
                "response_tokens": len(new),
                "finish_reason": "stop" if finished else "length",
            }
    return results


def generate_vllm(
    model_dir, tokenizer, encoded: list[list[int]], settings: GenerationSettings, seed: int
) -> list[dict]:
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    v = settings.vllm
    llm = LLM(
        model=str(model_dir),
        # prompts arrive as token ids and responses are decoded below with the same tokenizer as
        # the transformers backend; "hf" keeps vLLM's own (stop tokens) off mistral-common
        tokenizer=tokenizer.name_or_path,
        tokenizer_mode="hf",
        tensor_parallel_size=v.tensor_parallel_size,
        gpu_memory_utilization=v.gpu_memory_utilization,
        max_model_len=v.max_model_len,
        dtype=v.dtype,
        seed=seed,
    )
    params = SamplingParams(
        temperature=settings.temperature,
        top_p=settings.top_p,
        max_tokens=settings.max_new_tokens,
        seed=seed,
    )
    outs = llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in encoded], params, use_tqdm=False)
    return [
        {
            "response": tokenizer.decode(list(o.outputs[0].token_ids), skip_special_tokens=True).strip(),
            "prompt_tokens": len(ids),
            "response_tokens": len(o.outputs[0].token_ids),
            "finish_reason": o.outputs[0].finish_reason,
        }
        for ids, o in zip(encoded, outs)
    ]


def generate(
    model: str,
    model_dir,
    template_dir,
    queries: list[dict],
    settings: GenerationSettings,
    seed: int,
    display: str,
) -> list[dict]:
    """One row per query: {id, query, response, model, display, ...} with the decoding settings and
    `seed` (the run's seed)."""
    t0 = time.monotonic()
    backend = generate_vllm if settings.backend == "vllm" else generate_transformers
    tokenizer = load_tokenizer(template_dir)
    encoded = [user_prompt_ids(tokenizer, q["query"], settings.chat_template_date) for q in queries]
    results = backend(Path(model_dir), tokenizer, encoded, settings, seed)
    decoding = {
        "backend": settings.backend,
        "max_new_tokens": settings.max_new_tokens,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "seed": seed,
    }
    log.info("%s: %d responses in %.1f s", model, len(queries), time.monotonic() - t0)
    return [
        {
            "id": q["id"],
            "query": q["query"],
            **r,
            "model": model,
            "display": display,
            "chat_template_of": str(template_dir),
            "chat_template_date": settings.chat_template_date,
            "prompt_sha256": prompt_sha256(ids),
            "decoding": decoding,
        }
        for q, ids, r in zip(queries, encoded, results)
    ]
