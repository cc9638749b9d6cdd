"""Benchmark: training throughput (tokens/s per device) and MFU of a random-init Qwen2-architecture
model at the configured sequence length, on one GPU (or a CPU for a smoke test).

    python scripts/benchmark_training.py --hidden 1536 --layers 28 --heads 12 --kv-heads 2 \
        --intermediate 8960 --length 4096 --micro-batch 1 --steps 20 --peak-tflops 989   # H100 bf16 dense
Defaults give a ~1.5B-parameter model (Qwen2.5-1.5B's shape). Prints parameters, tokens/s and MFU
(6 * parameters * tokens/s / peak; attention FLOPs excluded, as in the paper's comparison).
"""

import argparse
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--hidden", type=int, default=1536)
p.add_argument("--layers", type=int, default=28)
p.add_argument("--heads", type=int, default=12)
p.add_argument("--kv-heads", type=int, default=2)
p.add_argument("--intermediate", type=int, default=8960)
p.add_argument("--vocab", type=int, default=151936)
p.add_argument("--length", type=int, default=4096)
p.add_argument("--micro-batch", type=int, default=1)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the device")
p.add_argument("--no-checkpointing", action="store_true")
args = p.parse_args()

gpu = torch.cuda.is_available()
device = "cuda" if gpu else "cpu"
config = Qwen2Config(
    vocab_size=args.vocab,
    hidden_size=args.hidden,
    num_hidden_layers=args.layers,
    num_attention_heads=args.heads,
    num_key_value_heads=args.kv_heads,
    intermediate_size=args.intermediate,
    max_position_embeddings=args.length,
    tie_word_embeddings=False,
    use_sliding_window=False,
)
config._attn_implementation = "flash_attention_2" if gpu else "sdpa"
torch.manual_seed(0)
model = Qwen2ForCausalLM(config).to(device, dtype=torch.bfloat16 if gpu else torch.float32)
if not args.no_checkpointing:
    model.gradient_checkpointing_enable()
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=gpu)
n_params = sum(p.numel() for p in model.parameters())
ids = torch.randint(0, args.vocab, (args.micro_batch, args.length), device=device)
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
    f"device={name} parameters={n_params} length={args.length} micro_batch={args.micro_batch}"
    f" attention={config._attn_implementation} checkpointing={not args.no_checkpointing}"
    f" tokens_per_s={tokens_per_s:.0f} mfu={mfu if mfu is None else round(mfu, 4)}"
    f" peak_memory_gb={torch.cuda.max_memory_allocated() / 2**30 if gpu else 0:.1f}"
)
