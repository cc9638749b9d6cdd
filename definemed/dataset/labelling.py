"""Zero-shot medical labelling with an instruction-tuned LLM (paper 3.2, appendix A.1).

The appendix prompt, with the (cut) document in place of <DOCUMENT>, is sent as the user turn of
the labeller's own chat template, rendered by definemed.chat the same way for both backends (the
document's text encoded as text); the hash of the rendered token ids is kept with every label.
The model may emit one token, restricted to the yes/no answer tokens: the label is "medical" when
that token is a yes token. The score is P(yes) renormalised over the allowed tokens, kept for
thresholds and calibration plots.

Work proceeds in chunks of the sample, each written atomically with a fingerprint of everything
that shapes its labels; a rerun reuses matching chunks, so a killed job resumes where it stopped
and ends with the labels an uninterrupted run gives.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from definemed.chat import load_tokenizer, prompt_sha256, user_prompt_ids
from definemed.config import Settings
from definemed.io import parquet_metadata, sha256_text, write_parquet
from definemed.model_facts import model_fingerprint

log = logging.getLogger(__name__)
PLACEHOLDER = "<DOCUMENT>"


@dataclasses.dataclass(frozen=True)
class LabellingSettings(Settings):
    """The labelling section as its jobs read it (rules/labelling.smk), with the day chat
    templates print."""

    SECTION: ClassVar[str] = "labelling"
    sample_size: int
    model: str
    backend: str
    prompt: str
    answer_words: dict[str, list[str]]
    max_document_tokens: int
    chunk_size: int
    batch_size: int
    vllm: dict
    resources: dict
    chat_template_date: str = dataclasses.field(metadata={"schema": "chat_template_date"})

    def request(self, model_dir) -> dict:
        """Everything besides the documents that shapes a label: a finished chunk is reused only
        for the same request."""
        return {
            "model": model_fingerprint(model_dir),
            "backend": self.backend,
            "prompt_sha256": sha256_text(self.prompt),
            "answer_words": self.answer_words,
            "max_document_tokens": self.max_document_tokens,
            "chat_template_date": self.chat_template_date,
        }


def truncate_document(tokenizer, text: str, max_tokens: int) -> str:
    """Cut a document to its first `max_tokens` tokens of the labeller's tokenizer."""
    # control-token strings in the text count as the text they are (as the prompt encodes them)
    ids = tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    if len(ids) <= max_tokens:
        return text
    return tokenizer.decode(ids[:max_tokens])


def render_prompt(tokenizer, prompt: str, document: str, template_date: str) -> list[int]:
    """Token ids of the chat-formatted user turn plus the generation prompt (no double BOS)."""
    return user_prompt_ids(tokenizer, prompt.replace(PLACEHOLDER, document), template_date)


def answer_token_ids(tokenizer, answer_words: dict) -> tuple[list[int], list[int]]:
    """First-token ids of each answer word, with and without a leading space; ids that start both a
    yes and a no word (e.g. a bare space piece) are dropped as they decide nothing."""

    def first_ids(words):
        out = set()
        for w in words:
            for variant in (w, " " + w):
                ids = tokenizer(variant, add_special_tokens=False)["input_ids"]
                if ids:
                    out.add(ids[0])
        return out

    yes, no = first_ids(answer_words["yes"]), first_ids(answer_words["no"])
    shared = yes & no
    yes, no = sorted(yes - shared), sorted(no - shared)
    if not yes or not no:
        raise ValueError(f"answer words {answer_words} leave no distinct first token for yes and no in this tokenizer")
    return yes, no


def decide(logits: np.ndarray, yes_ids, no_ids) -> tuple[np.ndarray, np.ndarray]:
    """From next-token logits (batch, vocab): label = the yes/no-restricted greedy token is a yes
    token; score = probability mass of yes tokens among the allowed tokens."""
    y, n = logits[:, yes_ids], logits[:, no_ids]
    label = y.max(axis=1) > n.max(axis=1)
    allowed = np.concatenate([y, n], axis=1)
    allowed = allowed - allowed.max(axis=1, keepdims=True)
    p = np.exp(allowed)
    score = p[:, : len(yes_ids)].sum(axis=1) / p.sum(axis=1)
    return label, score


class TransformersScorer:
    """CPU (or single-GPU) backend: one forward pass per length-sorted batch, left padding."""

    def __init__(self, model_dir, answer_words, batch_size: int, device=None, dtype=None):
        import torch
        from transformers import AutoModelForCausalLM

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = load_tokenizer(model_dir)
        dtype = dtype or (torch.bfloat16 if self.device == "cuda" else torch.float32)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:  # Mistral-family tokenizers ship without a pad token
            self.pad_id = self.tokenizer.eos_token_id
        self.yes_ids, self.no_ids = answer_token_ids(self.tokenizer, answer_words)
        self.batch_size = batch_size

    def score(self, prompts: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        torch = self.torch
        order = np.argsort([len(p) for p in prompts], kind="stable")
        labels = np.zeros(len(prompts), dtype=bool)
        scores = np.zeros(len(prompts), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(prompts), self.batch_size):
                idx = order[start : start + self.batch_size]
                width = max(len(prompts[i]) for i in idx)
                ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
                    mask[row, width - len(prompts[i]) :] = 1
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                out = self.model(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    position_ids=positions.to(self.device),
                    logits_to_keep=1,
                )
                logits = out.logits[:, -1, :].float().cpu().numpy()
                labels[idx], scores[idx] = decide(logits, self.yes_ids, self.no_ids)
        return labels, scores


class VLLMScorer:
    """GPU backend (paper): vLLM with prefix caching (the prompt's instruction part is shared by
    every request) and generation restricted to the yes/no tokens."""

    def __init__(
        self,
        model_dir,
        answer_words,
        *,
        tensor_parallel_size: int,
        gpu_memory_utilization: float,
        max_model_len: int,
        dtype: str,
    ):
        """The engine settings are labelling.vllm's (schemas/config.schema.yaml holds their defaults)."""
        from vllm import LLM, SamplingParams

        self.llm = LLM(
            model=str(model_dir),
            # prompts arrive as token ids from definemed.chat; "hf" keeps vLLM's own tokenizer (used
            # for nothing else here) the same as ours, not mistral-common's
            tokenizer_mode="hf",
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            dtype=dtype,
            enable_prefix_caching=True,
            # logprobs after the allowed-token mask: exactly the yes/no tokens have finite values
            logprobs_mode="processed_logprobs",
        )
        self.tokenizer = load_tokenizer(model_dir)
        self.yes_ids, self.no_ids = answer_token_ids(self.tokenizer, answer_words)
        allowed = self.yes_ids + self.no_ids
        self.params = SamplingParams(max_tokens=1, temperature=0.0, allowed_token_ids=allowed, logprobs=len(allowed))

    def score(self, prompts: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        from vllm.inputs import TokensPrompt

        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], self.params, use_tqdm=False)
        vocab = max(self.yes_ids + self.no_ids) + 1
        logits = np.full((len(prompts), vocab), -np.inf)
        for row, out in enumerate(outputs):
            for token_id, lp in out.outputs[0].logprobs[0].items():
                if token_id < vocab:
                    logits[row, token_id] = lp.logprob
        return decide(logits, self.yes_ids, self.no_ids)


def make_scorer(settings: LabellingSettings, model_dir):
    if settings.backend == "transformers":
        return TransformersScorer(model_dir, settings.answer_words, batch_size=settings.batch_size)
    if settings.backend == "vllm":
        return VLLMScorer(model_dir, settings.answer_words, **settings.vllm)
    raise ValueError(f"unknown labelling backend {settings.backend!r} (expected 'vllm' or 'transformers')")


def label_documents(sample: pa.Table, scorer, settings: LabellingSettings, work_dir, request: dict) -> pa.Table:
    """Label every row of `sample` (columns id, text), chunk by chunk, reusing finished chunks.

    `request` is everything besides the documents that shapes a label (settings.request: model
    fingerprint, prompt, cut, template date, answer words); a chunk is reused only if its request
    and document ids match. Each row keeps the hash of the token ids its label was read from."""
    prompt, chunk_size = settings.prompt, settings.chunk_size
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    for stale in work_dir.glob(".chunk-*.tmp"):  # left by a job killed while writing
        stale.unlink()
    request_hash = sha256_text(json.dumps(request, sort_keys=True))
    ids = sample.column("id").to_pylist()
    texts = sample.column("text").to_pylist()
    parts, reused = [], 0
    for k, start in enumerate(range(0, len(ids), chunk_size)):
        chunk_ids = ids[start : start + chunk_size]
        meta = {"request": request_hash, "ids": sha256_text("\n".join(chunk_ids))}
        path = work_dir / f"chunk-{k:05d}.parquet"
        if path.exists() and parquet_metadata(path) == meta:
            parts.append(pq.read_table(path))
            reused += 1
            continue
        t0 = time.perf_counter()
        prompts = [
            render_prompt(
                scorer.tokenizer,
                prompt,
                truncate_document(scorer.tokenizer, t, settings.max_document_tokens),
                settings.chat_template_date,
            )
            for t in texts[start : start + chunk_size]
        ]
        labels, scores = scorer.score(prompts)
        table = pa.table(
            {
                "id": chunk_ids,
                "label": labels.astype(np.int8),
                "score": scores,
                "rendered_prompt_sha256": [prompt_sha256(p) for p in prompts],
            }
        )
        write_parquet(path, table, metadata=meta)
        parts.append(table)
        log.info("chunk %d: %d documents in %.1f s", k, len(chunk_ids), time.perf_counter() - t0)
    log.info("%d chunks, %d reused from %s", len(parts), reused, work_dir)
    labels = pa.concat_tables(parts)
    n = labels.num_rows
    return labels.append_column("model", pa.array([request["model"]["name"]] * n)).append_column(
        "prompt_sha256", pa.array([sha256_text(prompt)] * n)
    )
