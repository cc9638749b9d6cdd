#!/usr/bin/env bash
# The GPU checks behind docs/benchmarks.md, in one go on one GPU (run from the repository root
# after a finished miniature; results and logs go to $OUT, default gpu-checks/):
#   1. training throughput and MFU of the source models' shapes at the paper's sequence length;
#   2. the real CPT code path (scripts/train_cpt.py: HF Trainer, bf16, activation checkpointing,
#      throughput callback) on a Qwen2.5-0.5B-shaped model over the miniature's packed corpus;
#   3. classifier scoring throughput of an XLM-RoBERTa-base-shaped model.
# PEAK_TFLOPS is the card's dense bf16 peak (A100 312, H100/H200 SXM 989); PARTS picks parts (default 123).
set -uo pipefail
OUT=${OUT:-gpu-checks}
PEAK=${PEAK_TFLOPS:-989}
PARTS=${PARTS:-123}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python -c "import torch, transformers, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__)"
python -c "import flash_attn" 2>/dev/null && echo "flash-attn installed" || echo "flash-attn not installed: attention sdpa"

if [[ $PARTS == *1* ]]; then
echo "== 1. training throughput (random init, AdamW, checkpointing, length 4096)"
for preset in qwen2.5-7b mistral-7b qwen2.5-1.5b; do
  python scripts/benchmark_training.py --preset "$preset" --length 4096 --steps 8 --peak-tflops "$PEAK" 2>&1 | grep -v Warning
done
python scripts/benchmark_training.py --preset qwen2.5-1.5b --length 4096 --micro-batch 4 --steps 8 --peak-tflops "$PEAK" 2>&1 | grep -v Warning

fi

if [[ $PARTS == *2* ]]; then
echo "== 2. scripts/train_cpt.py on the GPU"
python - <<'PY'
import shutil, torch
from pathlib import Path
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM
tiny = Path("miniature/models/tiny-qwen2.5-7b-instruct")
out = Path("/tmp/gpu-check-qwen0.5b")
config = Qwen2Config(vocab_size=151936, hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
                     num_key_value_heads=2, intermediate_size=4864, max_position_embeddings=4096, tie_word_embeddings=True)
torch.manual_seed(0)
Qwen2ForCausalLM(config).to(torch.bfloat16).save_pretrained(out)
AutoTokenizer.from_pretrained(tiny).save_pretrained(out)
shutil.copy(tiny / "definemed-source.json", out)
PY
# the miniature's cpt section (config/miniature.yaml with schema defaults), made GPU-sized
SETTINGS='{"sequence_length": 1024, "heldout_fraction": 0.05, "pack_window_documents": 100000, "epochs": 1,
 "effective_batch_sequences": 32, "micro_batch_size": 4, "learning_rate": 1e-05, "weight_decay": 0.1,
 "warmup_steps": 5, "gradient_checkpointing": true, "attention": "sdpa", "save_steps": 20, "adam_beta1": 0.9,
 "adam_beta2": 0.999, "document_masking": false, "peak_tflops_per_device": '"$PEAK"', "launcher": "python",
 "resources": {}}'
rm -rf /tmp/gpu-check-work /tmp/gpu-check-out
time python scripts/train_cpt.py --run gpu-check --packed miniature/results/packed/definemed-tiny-qwen2.5-7b \
  --base /tmp/gpu-check-qwen0.5b --settings "$SETTINGS" --seed 1 --work-dir /tmp/gpu-check-work \
  --out /tmp/gpu-check-out --out-log "$OUT/cpt_training_log.jsonl" --out-summary "$OUT/cpt_summary.json" 2>&1 | tail -15
cat "$OUT/cpt_summary.json"

fi

if [[ $PARTS == *3* ]]; then
echo "== 3. classifier scoring (XLM-RoBERTa-base shape, bf16)"
python - <<'PY'
import shutil, torch
from pathlib import Path
from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaForSequenceClassification
out = Path("/tmp/gpu-check-xlmr-base")
config = XLMRobertaConfig(vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                          intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, num_labels=2)
torch.manual_seed(0)
XLMRobertaForSequenceClassification(config).save_pretrained(out)
AutoTokenizer.from_pretrained("miniature/results/classifier/model").save_pretrained(out)
PY
for multiple in 1 64; do
  python scripts/benchmark_scoring.py --model /tmp/gpu-check-xlmr-base --shard miniature/data/fineweb2/*.parquet \
    --max-length 512 --max-tokens-per-batch 65536 --pad-multiple $multiple 2>&1 | grep -v Warning
done
fi
