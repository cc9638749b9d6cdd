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
