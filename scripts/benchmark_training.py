"""Benchmark: training throughput (tokens/s per device) and MFU of a random-init model with a real
architecture's shape at the configured sequence length, on one GPU (or a CPU for a smoke test).

    python scripts/benchmark_training.py --preset qwen2.5-7b --length 4096 --steps 8 --peak-tflops 989
    python scripts/benchmark_training.py --preset tiny --steps 2          # CPU smoke test
Presets copy the shapes of the paper's source models (Qwen2.5-7B, Mistral-7B-v0.3) and of
Qwen2.5-1.5B/0.5B. One optimizer step per micro batch (AdamW over bf16 parameters), activation
checkpointing unless --no-checkpointing. Prints parameters, tokens/s and MFU (6 * parameters *
tokens/s / peak; attention FLOPs excluded, as in the paper's comparison).
"""

import argparse
import importlib.util
import time

import torch
from transformers import MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM

PRESETS = {  # name: (family, hidden, layers, heads, kv_heads, intermediate, vocab)
    "qwen2.5-7b": ("qwen2", 3584, 28, 28, 4, 18944, 152064),
    "mistral-7b": ("mistral", 4096, 32, 32, 8, 14336, 32768),
    "qwen2.5-1.5b": ("qwen2", 1536, 28, 12, 2, 8960, 151936),
    "qwen2.5-0.5b": ("qwen2", 896, 24, 14, 2, 4864, 151936),
    "tiny": ("qwen2", 64, 2, 4, 2, 160, 4000),
}
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--preset", choices=PRESETS, default="qwen2.5-1.5b")
p.add_argument("--length", type=int, default=4096)
p.add_argument("--micro-batch", type=int, default=1)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the device (A100 312, H100 989)")
p.add_argument("--attention", default=None, help="default: flash_attention_2 when flash-attn is installed, else sdpa")
p.add_argument("--no-checkpointing", action="store_true")
args = p.parse_args()

gpu = torch.cuda.is_available()
device = "cuda" if gpu else "cpu"
family, hidden, layers, heads, kv_heads, intermediate, vocab = PRESETS[args.preset]
config_cls, model_cls = (Qwen2Config, Qwen2ForCausalLM) if family == "qwen2" else (MistralConfig, MistralForCausalLM)
config = config_cls(
    vocab_size=vocab,
    hidden_size=hidden,
    num_hidden_layers=layers,
    num_attention_heads=heads,
    num_key_value_heads=kv_heads,
    intermediate_size=intermediate,
    max_position_embeddings=max(args.length, 4096),
    tie_word_embeddings=False,
)
attention = args.attention or ("flash_attention_2" if gpu and importlib.util.find_spec("flash_attn") else "sdpa")
config._attn_implementation = attention
torch.manual_seed(0)
dtype = torch.bfloat16 if gpu else torch.float32
torch.set_default_dtype(dtype)
with torch.device(device):  # initialise in place: a 7B model built on the CPU first takes minutes
    model = model_cls(config)
torch.set_default_dtype(torch.float32)
if not args.no_checkpointing:
    model.gradient_checkpointing_enable()
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=gpu)
n_params = sum(p.numel() for p in model.parameters())
ids = torch.randint(0, vocab, (args.micro_batch, args.length), device=device)
times = []
for step in range(args.warmup + args.steps):
    if gpu:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    if gpu:
        torch.cuda.synchronize()
    if step >= args.warmup:
        times.append(time.perf_counter() - t0)
tokens_per_s = args.micro_batch * args.length * len(times) / sum(times)
mfu = 6 * n_params * tokens_per_s / (args.peak_tflops * 1e12) if args.peak_tflops else None
name = torch.cuda.get_device_name() if gpu else "cpu"
print(
    f"device={name} preset={args.preset} parameters={n_params} length={args.length}"
    f" micro_batch={args.micro_batch} attention={attention} checkpointing={not args.no_checkpointing}"
    f" step_s={sum(times) / len(times):.3f} tokens_per_s={tokens_per_s:.0f} mfu={mfu if mfu is None else round(mfu, 4)}"
    f" peak_memory_gb={torch.cuda.max_memory_allocated() / 2**30 if gpu else 0:.1f}",
    flush=True,
)
