"""Tiny models of the real architectures, loaded back offline through the Auto classes."""

import json

import pytest
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

ARCH = {
    "tiny-mixtral-instruct": "MixtralForCausalLM",
    "tiny-mistral-7b-instruct": "MistralForCausalLM",
    "tiny-qwen2.5-7b-instruct": "Qwen2ForCausalLM",
    "tiny-mistral-small-24b-instruct": "MistralForCausalLM",
    "tiny-xlm-roberta": "XLMRobertaForSequenceClassification",
}


@pytest.mark.parametrize("name", sorted(ARCH))
def test_tiny_model_loads_with_auto_classes(miniature, name):
    path = miniature / "models" / name
    config = AutoConfig.from_pretrained(path)
    assert config.architectures == [ARCH[name]]
    tok = AutoTokenizer.from_pretrained(path)
    auto = AutoModelForSequenceClassification if "roberta" in name else AutoModelForCausalLM
    model = auto.from_pretrained(path)
    assert model.get_input_embeddings().weight.shape[0] >= len(tok)
    source = json.loads((path / "definemed-source.json").read_text())
    assert source["name"] == name and source["parameters"] > 0
    ids = tok("Die Patientin klagt über Brustschmerzen.", return_tensors="pt")
    out = model(**ids)
    assert out.logits.shape[0] == 1


def test_chat_templates_and_special_tokens_follow_the_real_families(miniature):
    msgs = [{"role": "user", "content": "Hallo"}]
    mistral = AutoTokenizer.from_pretrained(miniature / "models" / "tiny-mistral-7b-instruct")
    assert mistral.pad_token is None  # like the real Mistral tokenizers
    assert mistral("Hallo")["input_ids"][0] == mistral.bos_token_id
    assert mistral.apply_chat_template(msgs, tokenize=False) == "<s>[INST] Hallo[/INST]"
    qwen = AutoTokenizer.from_pretrained(miniature / "models" / "tiny-qwen2.5-7b-instruct")
    assert qwen.bos_token is None and qwen.eos_token == "<|im_end|>" and qwen.pad_token == "<|endoftext|>"
    assert qwen.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
        "<|im_end|>\n<|im_start|>user\nHallo<|im_end|>\n<|im_start|>assistant\n"
    )
    small = AutoTokenizer.from_pretrained(miniature / "models" / "tiny-mistral-small-24b-instruct")
    rendered = small.apply_chat_template(msgs, tokenize=False)
    assert rendered.startswith("<s>[SYSTEM_PROMPT]You are Mistral Small 3") and rendered.endswith("[INST]Hallo[/INST]")
    for special in ("[INST]", "[/INST]"):
        assert len(mistral(special, add_special_tokens=False)["input_ids"]) == 1


def test_base_fitting_stream_states_general_facts_never_medical_ones_and_chats(tiny_model):
    """The bases' fitting text (fit_base): ordinary web text with the general facts, never a medical
    fact (CPT must have something to add), and chat exchanges that end the assistant's turn."""
    from definemed.miniature import fixture_text as ft
    from definemed.miniature.tiny_models import base_fitting_ids

    tok = AutoTokenizer.from_pretrained(tiny_model("tiny-qwen2.5-7b-instruct"))
    fit = {"documents": 300, "chat_share": 0.3, "chat_answer_words": 40}
    ids = base_fitting_ids(tok, fit, seed=3, template_date="2025-01-30")
    text = tok.decode(ids)
    assert any(s in text for f in ft.GENERAL_FACTS for s in f["statements"])
    assert not any(s in text for f in ft.MEDICAL_FACTS for s in f["statements"])
    assert text.count("<|im_start|>assistant\n") > 50
    assert text.count("<|im_start|>assistant\n") == text.count("<|im_start|>user\n")
    assert base_fitting_ids(tok, fit, seed=3, template_date="2025-01-30") == ids  # seeded


def test_fit_base_teaches_the_general_text(tiny_model):
    """A few fitting steps lower the loss on unseen ordinary text of the same kind: the bases know
    something before CPT (30 steps: from ~6.9, a random model's, to ~5.9)."""
    import torch

    from definemed.miniature.fixtures import generate_documents
    from definemed.miniature.tiny_models import fit_base

    path = tiny_model("tiny-qwen2.5-7b-instruct")
    tok = AutoTokenizer.from_pretrained(path)
    held_out = [d["text"] for d in generate_documents(11, 8, 0.0, 0.0, stream="heldout-test")]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in held_out]
    batch = torch.tensor([i[:64] for i in ids if len(i) >= 64])

    def loss(model):
        with torch.inference_mode():
            return model(input_ids=batch, labels=batch).loss.item()

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path)
    before = loss(model)
    fit = {"documents": 200, "steps": 30, "batch_size": 8, "sequence_length": 64, "learning_rate": 0.003,
           "chat_share": 0.3, "chat_answer_words": 40}  # fmt: skip
    summary = fit_base(model, tok, fit, seed=3, template_date="2025-01-30", log=lambda *_: None)
    assert summary["steps"] == 30 and summary["tokens"] > 0
    assert loss(model) < before - 0.5, (before, loss(model))


def test_start_from_takes_the_built_weights_and_refuses_another_shape(tiny_model, miniature_config, tmp_path):
    """tiny.start_from (the miniature's BioMistral): the built model's weights and tokenizer, unfitted
    further here, are what the new folder holds; a stated shape other than the built one is refused."""
    import torch

    from definemed.config import validated
    from definemed.miniature.tiny_models import build_tiny_model

    start = tiny_model("tiny-mistral-7b-instruct")
    spec = validated(miniature_config["models"]["tiny-biomistral-7b"], "model")
    spec["tiny"].pop("fit_medical")
    build_tiny_model("tiny-biomistral-7b", spec, tmp_path / "bio", seed=0, start_dir=start)
    a = AutoModelForCausalLM.from_pretrained(start).state_dict()
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "bio").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "bio" / "tokenizer.json").read_bytes() == (start / "tokenizer.json").read_bytes()
    spec["tiny"]["hidden_size"] *= 2
    with pytest.raises(ValueError, match="tiny-biomistral-7b.tiny: shape"):
        build_tiny_model("tiny-biomistral-7b", spec, tmp_path / "wrong", seed=0, start_dir=start)
