"""Every GPU job of the paper run fits its card (definemed/plan.py gpu_fit_jobs, `make plan`), and
the check names each job that does not: small constructed configs that break one stage each. Also
the per-model tensor parallelism of response generation (issue 26, 1). No GPU, no dry run."""

import copy

import pytest
from conftest import REPO

from definemed.config import load
from definemed.judges.generation import GenerationSettings, generation_settings, tensor_parallel
from definemed.plan import (
    HUB_ENCODER_SHAPES,
    HUB_MODEL_SHAPES,
    decoder_parameters,
    encoder_parameters,
    gpu_fit_jobs,
    gpu_fit_table,
)

PAPER = load(REPO / "config.yaml")
SMALL_24B = "mistral-small-24b-instruct-2501"


def bad_jobs(config) -> list[str]:
    return gpu_fit_table(gpu_fit_jobs(config, REPO))[1]


def test_every_gpu_job_of_the_paper_run_fits_its_card():
    jobs = gpu_fit_jobs(PAPER, REPO)
    assert {j["rule"] for j in jobs} >= {
        "label_documents",
        "train_classifier",
        "score_shard",
        "train_cpt",
        "generate_responses",
        "benchmark_medical",
        "benchmark_general",
    }
    table, bad = gpu_fit_table(jobs)
    assert bad == [] and "DOES NOT FIT" not in table, table
    by_job = {j["job"]: j for j in jobs}
    # the 24B merge generates on 2 GPUs of 40 GiB: 22 GiB of bf16 weights each (44 GiB in all)
    merge = by_job["generate_responses model=definemed-mistral-small-24b-slerp"]
    assert merge["gpus"] == merge["tensor_parallel"] == 2 and 21 < merge["weights"] < 23 and merge["card_gib"] == 40
    assert by_job["train_cpt run=definemed-mistral-small-24b"]["card_gib"] == 64  # A.3: Leonardo's A100 64GB
    assert by_job["label_documents"]["tensor_parallel"] == 4


def test_generation_runs_the_24b_family_tensor_parallel():
    for name in (SMALL_24B, "definemed-mistral-small-24b-slerp"):
        assert tensor_parallel(PAPER, name) == 2
        assert generation_settings(PAPER, name)["vllm"]["tensor_parallel_size"] == 2
        assert GenerationSettings.from_config(generation_settings(PAPER, name)).vllm.tensor_parallel_size == 2
    assert tensor_parallel(PAPER, "definemed-qwen2.5-7b-slerp") == 1
    settings = generation_settings(PAPER, "qwen2.5-7b-instruct")
    assert settings["vllm"]["tensor_parallel_size"] == 1 and "tensor_parallel" not in settings
    assert settings["chat_template_date"] == PAPER["chat_template_date"]
    transformers = copy.deepcopy(PAPER)
    transformers["generation"]["backend"] = "transformers"
    assert tensor_parallel(transformers, SMALL_24B) == 1


def test_generation_of_the_24b_on_one_40gb_card_is_named():
    config = copy.deepcopy(PAPER)
    config["generation"]["tensor_parallel"] = {}
    bad = bad_jobs(config)
    assert bad == [
        f"generate_responses model={SMALL_24B}",
        "generate_responses model=definemed-mistral-small-24b-slerp",
    ]
    table = gpu_fit_table(gpu_fit_jobs(config, REPO))[0]
    assert f"DOES NOT FIT: {', '.join(bad)}" in table
    # on an 80 GB card (a stage saying so) one GPU holds it
    config["generation"]["resources"]["gpu_memory_gb"] = 80
    assert bad_jobs(config) == []


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: c["benchmarks"].update(tensor_parallel={}), "benchmark_medical model=definemed-mistral-small-24b"),
        (lambda c: c["labelling"]["vllm"].update(tensor_parallel_size=2), "label_documents"),
        (lambda c: c["labelling"]["resources"].update(gpu=2), "label_documents"),  # TP 4 on 2 GPUs
        (lambda c: c["classifier"].update(batch_size=512), "train_classifier"),
        (lambda c: c["classifier"].update(max_tokens_per_batch=2**22), "score_shard shard=*"),
        (
            lambda c: c["cpt"]["runs"]["definemed-mistral-small-24b"]["resources"].update(gpu_memory_gb=24),
            "train_cpt run=definemed-mistral-small-24b",
        ),
        (
            lambda c: c["benchmarks"]["model_args"].update(gpu_memory_utilization=0.4),
            "benchmark_general model=qwen2.5-7b-instruct",
        ),
    ],
)
def test_a_job_that_does_not_fit_is_named(change, expected):
    config = copy.deepcopy(PAPER)
    change(config)
    assert expected in bad_jobs(config)


def test_parameter_counts_of_the_shapes():
    billions = {repo: round(decoder_parameters(s)["total"] / 1e9, 2) for repo, s in HUB_MODEL_SHAPES.items()}
    assert billions["mistralai/Mixtral-8x7B-Instruct-v0.1"] == 46.70  # the model card's 46.7B
    assert billions["BioMistral/BioMistral-7B"] == 7.24
    assert round(encoder_parameters(HUB_ENCODER_SHAPES["FacebookAI/xlm-roberta-base"]) / 1e6) == 278


def test_the_formulas_count_what_transformers_builds():
    from transformers import MixtralConfig, MixtralForCausalLM, XLMRobertaConfig, XLMRobertaForSequenceClassification

    moe = dict(vocab_size=300, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, head_dim=8, num_local_experts=4, tie_word_embeddings=False)  # fmt: skip
    model = MixtralForCausalLM(MixtralConfig(**moe))
    assert decoder_parameters({**moe, "attention_bias": False})["total"] == sum(p.numel() for p in model.parameters())
    enc = dict(vocab_size=300, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
               max_position_embeddings=70, type_vocab_size=1, num_labels=2)  # fmt: skip
    model = XLMRobertaForSequenceClassification(XLMRobertaConfig(**enc))
    assert encoder_parameters(enc) == sum(p.numel() for p in model.parameters())
