"""The CPT memory plan's terms (definemed/plan.py cpt_memory) against a measured peak: one forward
and backward of a bf16 Qwen2 whose memory is the loss's (a small hidden size, a large vocabulary),
as the Trainer runs it (compute_loss keeps the loss, not the model's output), in a fresh process:
its peak resident memory (Linux VmHWM, reset before the step) over the memory before it. About 10 s."""

import json
import subprocess
import sys

import pytest
from conftest import REPO

TOKENS, VOCAB, HIDDEN, INTERMEDIATE = 1024, 32768, 64, 128

PROBE = f"""
import json, resource, torch
from transformers import Qwen2Config, Qwen2ForCausalLM
torch.set_num_threads(1)
config = Qwen2Config(vocab_size={VOCAB}, hidden_size={HIDDEN}, intermediate_size={INTERMEDIATE},
    num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings={TOKENS},
    tie_word_embeddings=False)
torch.manual_seed(0)
model = Qwen2ForCausalLM(config).to(torch.bfloat16)  # bf16 compute, as FSDP's param_dtype
ids = torch.randint(0, {VOCAB}, (1, {TOKENS}))
model(input_ids=ids[:, :16], labels=ids[:, :16]).loss.backward()  # allocator and lazy state warmed up
model.zero_grad(set_to_none=True)


def resident():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()


before = resident()
open("/proc/self/clear_refs", "w").write("5")  # resets VmHWM to the current resident size
model(input_ids=ids, labels=ids).loss.backward()
peak = [int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
print(json.dumps({{"bytes": peak - before}}))
"""


@pytest.fixture(scope="module")
def measured_peak() -> int:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])["bytes"]


def test_memory_plan_terms_hold_against_the_measured_peak_of_the_loss(measured_peak):
    from definemed.plan import cpt_memory

    shape = {
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": HIDDEN // 4,
        "tie_word_embeddings": False,
        "attention_bias": True,
    }
    mem = cpt_memory(shape, 1, 1, "NO_SHARD", TOKENS, 1, False)
    # the step's transient memory: the loss (logits) and the layer's activations; the parameters and
    # their gradients (4 MB here) are within the tolerance
    estimate = mem["logits"] + mem["activations"]
    print(f"\nmeasured {measured_peak / 2**20:.0f} MiB = {measured_peak / (TOKENS * VOCAB):.2f} bytes/entry")
    assert estimate == pytest.approx(measured_peak, rel=0.05)
    # the term written before (10 bytes per token and vocabulary entry) misses it by more than the tolerance
    assert 10 * TOKENS * VOCAB + mem["activations"] < 0.9 * measured_peak
