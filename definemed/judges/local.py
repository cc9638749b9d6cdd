"""A local judge: a Hugging Face causal LM whose answers xgrammar constrains to the request's JSON
schema (offline, CPU or one GPU), in place of the paper's API judges (the miniature judges with
the rubric backend instead: a tiny LLM judge is noise); the answers are real model outputs, valid
by construction up to the token limit."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from definemed.config import Settings
from definemed.judges.records import completion_record, failed_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalJudgeSettings(Settings):
    """The local backend's own settings of a judge ($defs.judge.local)."""

    SECTION = "$defs.judge.local"
    max_string_chars: int
    batch_size: int


def render_chat(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of `messages` in the model's chat template plus the generation prompt. Templates
    without a system role (Mixtral v0.1) get the system text in front of the first user turn."""
    try:
        ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    except Exception:  # jinja2 raise_exception of templates that reject the system role
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        rest = [dict(m) for m in messages if m["role"] != "system"]
        rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
        ids = tokenizer.apply_chat_template(rest, tokenize=True, add_generation_prompt=True)
    if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
        ids = ids["input_ids"]
    return list(ids)


class LocalJudge:
    def __init__(self, model_dir, settings: LocalJudgeSettings, device: str | None = None):
        import torch
        import xgrammar as xgr
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch, self.xgr = torch, xgr
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir).to(self.device).eval()
        info = xgr.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=self.model.config.vocab_size)
        self.compiler = xgr.GrammarCompiler(info)
        self.compiled: dict[str, object] = {}
        self.batch_size = settings.batch_size
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id
        self.context = getattr(self.model.config, "max_position_embeddings", None)

    def _grammar(self, schema: dict):
        text = json.dumps(schema, sort_keys=True)
        if text not in self.compiled:
            # any_whitespace=False: a weak model would otherwise emit whitespace forever
            self.compiled[text] = self.compiler.compile_json_schema(text, any_whitespace=False)
        return self.compiled[text]

    def complete(self, bodies: dict[str, dict]):
        """Yield (key, record) for each request body (the same records as the API backends)."""
        torch = self.torch
        from xgrammar.contrib.hf import LogitsProcessor

        items = []
        for key, body in bodies.items():
            ids = render_chat(self.tokenizer, body["messages"])
            max_new = body["max_completion_tokens"]
            if self.context and len(ids) + max_new > self.context:
                yield (
                    key,
                    failed_record(
                        f"prompt of {len(ids)} tokens + {max_new} new exceeds the model's context of {self.context}", 1
                    ),
                )
                continue
            items.append((key, body, ids))
        # batches share one schema and decoding setting; length-sorted to pad little
        items.sort(key=lambda it: (json.dumps(it[1]["response_format"], sort_keys=True), len(it[2])))
        start = 0
        while start < len(items):
            group = [items[start]]
            sig = (json.dumps(items[start][1]["response_format"], sort_keys=True), items[start][1]["temperature"])
            while (
                len(group) < self.batch_size
                and start + len(group) < len(items)
                and (
                    json.dumps(items[start + len(group)][1]["response_format"], sort_keys=True),
                    items[start + len(group)][1]["temperature"],
                )
                == sig
            ):
                group.append(items[start + len(group)])
            start += len(group)
            t0 = time.monotonic()
            body = group[0][1]
            schema = body["response_format"]["json_schema"]["schema"]
            width = max(len(ids) for _, _, ids in group)
            input_ids = torch.full((len(group), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(group), width), dtype=torch.long)
            for row, (_, _, ids) in enumerate(group):  # left padding
                input_ids[row, width - len(ids) :] = torch.tensor(ids)
                mask[row, width - len(ids) :] = 1
            temperature = body["temperature"]
            sampling = {"do_sample": False} if temperature == 0 else {"do_sample": True, "temperature": temperature}
            if body.get("seed") is not None:
                torch.manual_seed(body["seed"])
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=input_ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    max_new_tokens=max(b["max_completion_tokens"] for _, b, _ in group),
                    logits_processor=[LogitsProcessor(self._grammar(schema))],
                    pad_token_id=self.pad_id,
                    eos_token_id=self.tokenizer.eos_token_id,
                    top_p=None,
                    top_k=None,
                    **sampling,
                )
            elapsed = time.monotonic() - t0
            for row, (key, _, ids) in enumerate(group):
                new = out[row, width:].tolist()
                eos = self.tokenizer.eos_token_id
                finished = eos in new
                if finished:
                    new = new[: new.index(eos)]
                while new and new[-1] == self.pad_id:
                    new.pop()
                text = self.tokenizer.decode(new, skip_special_tokens=True)
                completion = {
                    "model": "local",
                    "choices": [{"message": {"content": text}, "finish_reason": "stop" if finished else "length"}],
                    "usage": {"prompt_tokens": len(ids), "completion_tokens": len(new) + int(finished)},
                }
                yield key, completion_record(completion, 1, elapsed / len(group))
