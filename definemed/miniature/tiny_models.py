"""Tiny random-init models of the paper's architectures, built offline for the miniature.

Each gets a byte-level BPE trained on fixture text with its family's special tokens and chat
template, so downstream code meets the same quirks as with the real checkpoints (Mistral adds a BOS
and has no pad token, Qwen has no BOS and ends turns with <|im_end|>, ...).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np

from definemed.dataset.labelling import LabellingSettings, answer_token_ids, render_prompt, truncate_document
from definemed.miniature.fixtures import FixtureSettings, generate_documents
from definemed.model_facts import SOURCE_FILE, model_fingerprint

# Special tokens as the real tokenizers name them.
FAMILIES = {
    "mixtral-v0.1": {"bos": "<s>", "eos": "</s>", "unk": "<unk>", "extra": ["[INST]", "[/INST]"]},
    "mistral-v0.3": {"bos": "<s>", "eos": "</s>", "unk": "<unk>", "extra": ["[INST]", "[/INST]"]},
    "mistral-small-2501": {
        "bos": "<s>",
        "eos": "</s>",
        "unk": "<unk>",
        "extra": ["[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"],
    },
    "qwen2.5": {"eos": "<|im_end|>", "pad": "<|endoftext|>", "extra": ["<|im_start|>"]},
    "xlm-roberta": {
        "bos": "<s>",
        "eos": "</s>",
        "unk": "<unk>",
        "pad": "<pad>",
        "mask": "<mask>",
        "cls": "<s>",
        "sep": "</s>",
        "extra": [],
    },
}


def chat_template(name: str) -> str:
    return resources.files("definemed").joinpath(f"chat_templates/{name}.jinja").read_text()


def train_tokenizer(texts, vocab_size: int, family: str):
    """A byte-level BPE with the family's special tokens, wrapped as PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    spec = FAMILIES[family]
    named = {k: v for k, v in spec.items() if k != "extra"}
    specials = list(dict.fromkeys([*named.values(), *spec["extra"]]))
    tok = Tokenizer(models.BPE(unk_token=spec.get("unk")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    bos = spec.get("bos")
    if family == "xlm-roberta":
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>",
            pair="<s> $A </s> </s> $B </s>",
            special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))],
        )
    elif bos:  # Mistral-family tokenizers prepend BOS when encoding
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    kwargs = {f"{k}_token": v for k, v in named.items()}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    if spec["extra"]:
        fast.add_special_tokens({"additional_special_tokens": spec["extra"]})
    if family != "xlm-roberta":
        fast.chat_template = chat_template(family)
        fast.padding_side = "left"
    return fast


def _model_config(tiny: dict, tokenizer, family: str):
    from transformers import MistralConfig, MixtralConfig, Qwen2Config, XLMRobertaConfig

    arch = tiny["architecture"]
    vocab = len(tokenizer)
    common = dict(
        vocab_size=vocab,
        hidden_size=tiny["hidden_size"],
        num_hidden_layers=tiny["num_layers"],
        num_attention_heads=tiny["num_heads"],
        intermediate_size=tiny["intermediate_size"],
        max_position_embeddings=tiny["max_position_embeddings"],
    )
    ids = dict(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if arch == "xlm-roberta":
        # RoBERTa offsets positions by padding_idx + 1: two extra rows
        common["max_position_embeddings"] += 2
        # no attention dropout (XLM-R-base has 0.1): on CPU a random draw per attention weight is
        # 60% of a tiny model's training step; hidden dropout stays
        return XLMRobertaConfig(
            **common, num_labels=tiny["num_labels"], type_vocab_size=1, attention_probs_dropout_prob=0.0, **ids
        )
    kv = dict(num_key_value_heads=tiny["num_kv_heads"], tie_word_embeddings=False, **ids)
    if arch == "mistral":
        return MistralConfig(**common, **kv, sliding_window=None)
    if arch == "qwen2":
        return Qwen2Config(**common, **kv, use_sliding_window=False)
    if arch == "mixtral":
        return MixtralConfig(
            **common,
            **kv,
            num_local_experts=tiny["num_experts"],
            num_experts_per_tok=tiny["experts_per_token"],
            sliding_window=None,
        )
    raise ValueError(f"unknown tiny architecture {arch!r}")


def build_tiny_model(
    name: str,
    spec: dict,
    out_dir,
    seed: int,
    labelling: LabellingSettings | None = None,
    fixture: FixtureSettings | None = None,
    log=print,
    start_dir=None,
) -> None:
    """Build model `name` from its config entry `spec` into `out_dir` (HF format); with
    `tiny.start_from`, from that built model in `start_dir` (then only this model's own fitting runs)."""
    tiny = spec["tiny"]
    family = "xlm-roberta" if tiny["architecture"] == "xlm-roberta" else spec["chat_template"]
    fixture = fixture or FixtureSettings.from_config({})
    if tiny.get("start_from"):
        model, tokenizer, fitted = _start_from(name, tiny, start_dir)
    else:
        model, tokenizer, fitted = _build_and_fit_base(name, spec, family, seed, labelling, fixture, log)
    if tiny.get("fit_medical"):
        ids = medical_fitting_ids(tokenizer, tiny["fit_medical"], seed)
        fitted = {
            "base": fitted,
            "medical": fit_stream(model, ids, tiny["fit_medical"], [seed, 19], "fit_medical", log),
        }
    if tiny.get("fit_labeller"):
        if labelling is None:
            raise ValueError(f"models.{name}.tiny.fit_labeller needs the labelling section")
        fitted = fit_labeller(model, tokenizer, labelling, tiny["fit_labeller"], seed, fixture, log)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if family != "xlm-roberta":
        model.generation_config.save_pretrained(out)
    source = {
        "name": name,
        "tiny": tiny,
        "chat_template": spec.get("chat_template"),
        "seed": seed,
        "fitted_labeller": fitted if tiny.get("fit_labeller") else None,
        "fitted_base": fitted if tiny.get("fit_base") or tiny.get("start_from") else None,
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }
    (out / SOURCE_FILE).write_text(json.dumps(source, indent=2, sort_keys=True) + "\n")


def _build_and_fit_base(name, spec, family, seed, labelling, fixture, log):
    """A new tokenizer and randomly initialised model of `spec`, fitted on general text if asked."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    tiny = spec["tiny"]
    docs = generate_documents(
        seed,
        tiny["tokenizer_documents"],
        fixture.medical_share,
        fixture.hard_negative_share,
        stream="tokenizer",
    )
    texts = [d["text"] for d in docs]
    if labelling:  # real tokenizers know English too: let the instruction's words become tokens
        texts += [labelling.prompt] * 20
        texts += [" ".join(w for ws in labelling.answer_words.values() for w in ws)] * 50
    if tiny.get("judge_prompts"):  # a judge reads the English A.7 prompts and writes their JSON keys
        from definemed.judges.prompts import judge_prompt_texts

        texts += judge_prompt_texts() * 200
    tokenizer = train_tokenizer(texts, tiny["vocab_size"], family)
    torch.manual_seed(seed)
    config = _model_config(tiny, tokenizer, family)
    auto = AutoModelForSequenceClassification if family == "xlm-roberta" else AutoModelForCausalLM
    model = auto.from_config(config)
    fitted = None
    if tiny.get("fit_base"):
        if labelling is None:
            raise ValueError(f"models.{name}.tiny.fit_base needs the labelling section (its chat_template_date)")
        fitted = fit_base(model, tokenizer, tiny["fit_base"], seed, labelling.chat_template_date, log)
    return model, tokenizer, fitted


def _start_from(name, tiny, start_dir):
    """The built model `tiny.start_from` (weights, tokenizer, what fitted it), checked to be the shape
    this model's entry states."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if start_dir is None:
        raise ValueError(f"models.{name}.tiny.start_from: {tiny['start_from']!r} needs its built folder (start_dir)")
    if tiny.get("fit_base") or tiny.get("fit_labeller"):
        raise ValueError(
            f"models.{name}.tiny: start_from takes {tiny['start_from']!r}'s fitting; drop fit_base/fit_labeller"
        )
    model = AutoModelForCausalLM.from_pretrained(start_dir, dtype="float32")
    keys = {"hidden_size": "hidden_size", "num_layers": "num_hidden_layers", "num_heads": "num_attention_heads"}
    keys |= {"num_kv_heads": "num_key_value_heads", "intermediate_size": "intermediate_size"}
    wanted = {key: tiny[key] for key in keys}
    got = {key: getattr(model.config, attr) for key, attr in keys.items()}
    if got != wanted:
        raise ValueError(f"models.{name}.tiny: shape {wanted} is not {tiny['start_from']!r}'s {got} ({start_dir})")
    fitted = model_fingerprint(start_dir).get("fitted_base")
    return model, AutoTokenizer.from_pretrained(start_dir), fitted


def base_fitting_ids(tokenizer, fit: dict, seed: int, template_date: str) -> list[int]:
    """The token stream a tiny instruct base is fitted on: ordinary (non-medical) fixture documents
    from their own seed stream, which state the general facts and never a medical one; a share of
    them as a chat exchange (asked for a text on the document's title, the assistant answers with
    the document's opening and ends its turn), so the base has a chat format to keep or lose."""
    from definemed.chat import template_clock

    docs = generate_documents(seed, fit["documents"], 0.0, 0.0, stream="base")
    rng = np.random.default_rng([seed, 17])
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for doc in docs:
        if rng.random() < fit["chat_share"]:
            title, _, body = doc["text"].partition("\n\n")
            answer = " ".join(body.split()[: fit["chat_answer_words"]])
            messages = [
                {"role": "user", "content": f"Schreibe einen kurzen Text zum Thema: {title}"},
                {"role": "assistant", "content": answer},
            ]
            with template_clock(template_date):
                ids += [int(i) for i in tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)]
        else:
            ids += tokenizer(doc["text"], add_special_tokens=False)["input_ids"] + [eos]
    return ids


def medical_fitting_ids(tokenizer, fit: dict, seed: int) -> list[int]:
    """The token stream the miniature's BioMistral is fitted on after fit_base: medical fixture
    documents from their own seed stream, as plain text ended by EOS."""
    docs = generate_documents(seed, fit["documents"], 1.0, 0.0, stream="biomedical")
    eos = tokenizer.eos_token_id
    return [i for d in docs for i in tokenizer(d["text"], add_special_tokens=False)["input_ids"] + [eos]]


def fit_base(model, tokenizer, fit: dict, seed: int, template_date: str, log=print) -> dict:
    """Miniature only: give a random tiny instruct model general knowledge and a chat format before
    it becomes a CPT base (a random model has nothing for CPT to make it forget, which is the
    paper's question). Next-token loss on base_fitting_ids chopped into fixed-length sequences."""
    return fit_stream(model, base_fitting_ids(tokenizer, fit, seed, template_date), fit, [seed, 18], "fit_base", log)


def fit_stream(model, ids: list[int], fit: dict, seed, tag: str, log=print) -> dict:
    """Next-token training on `ids` chopped into fit["sequence_length"] sequences: fit["steps"]
    AdamW steps of fit["batch_size"] seeded random sequences, warm-up then linear decay."""
    import torch

    stream = torch.tensor(ids)
    length = fit["sequence_length"]
    sequences = stream[: len(stream) // length * length].view(-1, length)
    rng = np.random.default_rng(seed)
    opt, sched = fitting_optimizer(model, fit, warmup=max(1, fit["steps"] // 20))
    model.train()
    for step in range(fit["steps"]):
        batch = sequences[rng.choice(len(sequences), size=min(fit["batch_size"], len(sequences)), replace=False)]
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == fit["steps"] - 1:
            log(f"{tag} step {step}: loss {loss.item():.4f}")
    model.eval()
    return {
        "documents": fit["documents"],
        "tokens": int(stream.numel()),
        "steps": fit["steps"],
        "final_loss": round(loss.item(), 6),
    }


def fitting_optimizer(model, fit: dict, warmup: int):
    """AdamW at fit["learning_rate"] without weight decay, linear warm-up over `warmup` steps, then
    linear decay to 0 at fit["steps"]: the schedule of every miniature-only fitting step."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=fit["learning_rate"], weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / fit["steps"])
    )
    return opt, sched


def fit_labeller(
    model, tokenizer, labelling: LabellingSettings, fit: dict, seed: int, fixture: FixtureSettings, log=print
):
    """Miniature only: teach a random tiny LLM to answer the labelling prompt, on fixture documents
    from a seed stream disjoint from the shards. Loss on the answer token alone."""
    import torch

    docs = generate_documents(
        seed, fit["documents"], fixture.medical_share, fixture.hard_negative_share, stream="labeller"
    )
    yes_ids, no_ids = answer_token_ids(tokenizer, labelling.answer_words)
    prompts = [
        render_prompt(
            tokenizer,
            labelling.prompt,
            truncate_document(tokenizer, d["text"], labelling.max_document_tokens),
            labelling.chat_template_date,
        )
        for d in docs
    ]
    # the first yes/no word as the model's own tokenizer spells it
    yes_tok = tokenizer(labelling.answer_words["yes"][0], add_special_tokens=False)["input_ids"][0]
    no_tok = tokenizer(labelling.answer_words["no"][0], add_special_tokens=False)["input_ids"][0]
    targets = [yes_tok if d["is_medical"] else no_tok for d in docs]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rng = np.random.default_rng([seed, 99])
    opt, sched = fitting_optimizer(model, fit, warmup=20)
    model.train()
    for step in range(fit["steps"]):
        idx = rng.choice(len(prompts), size=fit["batch_size"], replace=False)
        width = max(len(prompts[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, i in enumerate(idx):
            ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            mask[row, width - len(prompts[i]) :] = 1
        logits = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            logits_to_keep=1,
        ).logits[:, -1]
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([targets[i] for i in idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == fit["steps"] - 1:
            log(f"fit_labeller step {step}: loss {loss.item():.4f}")
    model.eval()
    return {
        "documents": fit["documents"],
        "steps": fit["steps"],
        "final_loss": round(loss.item(), 6),
        "yes_ids": yes_ids,
        "no_ids": no_ids,
    }
