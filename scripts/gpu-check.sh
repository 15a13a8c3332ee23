#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and nvcc: build with CUDA, train nanoGPT's
# baby config on the GPU and on the CPU from the same initial weights and data
# order (headsup initialises on the host from the seed, and the batch RNG is
# seeded the same), compare the first 20 losses (relative 1e-3), and print GPU
# tokens/s for the baby config and for nanoGPT's shakespeare_char GPU config.
#
#   scripts/gpu-check.sh [path/to/tinyshakespeare.txt]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/tinyshakespeare.txt}
OUT=${OUT_DIR:-/tmp/headsup-gpu-check}
rm -rf "$OUT"; mkdir -p "$OUT"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
nvcc --version | tail -n 2
cargo build --release --features cuda
BIN=target/release/headsup
BABY=(--config samples/shakespeare-char.toml --data "$DATA" --set train.log_interval=1 --set train.eval_interval=0 --set train.checkpoint_interval=0 --set train.attention_interval=0)

"$BIN" train "${BABY[@]}" --device cuda --set train.max_iters=300 --out "$OUT/gpu" > "$OUT/gpu.log"
"$BIN" train "${BABY[@]}" --device cpu --set train.max_iters=20 --out "$OUT/cpu" > "$OUT/cpu.log"

python3 - "$OUT" <<'PY'
import json, sys, statistics
out = sys.argv[1]
def steps(run):
    rows = [json.loads(l) for l in open(f"{out}/{run}/metrics.jsonl") if l.strip()]
    return [r for r in rows if r.get("event") == "step"]
g, c = steps("gpu"), steps("cpu")
worst = 0.0
for a, b in zip(g[:20], c[:20]):
    rel = abs(a["loss"] - b["loss"]) / abs(b["loss"])
    worst = max(worst, rel)
    print(f"step {a['step']:3d}  gpu {a['loss']:.6f}  cpu {b['loss']:.6f}  rel {rel:.2e}")
print(f"first 20 losses: worst relative difference {worst:.2e} -> {'OK' if worst < 1e-3 else 'FAIL'}")
tps = [r["tokens_per_sec"] for r in g[50:]]
print(f"baby config on GPU: median {statistics.median(tps):.0f} tokens/s over steps 51-300")
PY

"$BIN" train --config samples/shakespeare-char.toml --data "$DATA" --device cuda --out "$OUT/wide" \
  --set model.n_layer=6 --set model.n_head=6 --set model.n_embd=384 --set model.block_size=256 \
  --set train.batch_size=64 --set train.max_iters=100 --set train.log_interval=1 \
  --set train.eval_interval=0 --set train.checkpoint_interval=0 --set train.attention_interval=0 > "$OUT/wide.log"
python3 - "$OUT" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(f"{sys.argv[1]}/wide/metrics.jsonl") if l.strip()]
tps = [r["tokens_per_sec"] for r in rows if r.get("event") == "step"][20:]
print(f"6x6x384, block 256, batch 64 on GPU: median {statistics.median(tps):.0f} tokens/s over steps 21-100")
PY
