#!/usr/bin/env bash
# Alternating runs (A B A B ...) of `headsup bench` and the PyTorch reference
# on nanoGPT's baby config, at 1 and 2 threads. One JSON line per run on stdout;
# peak RSS of each process from /usr/bin/time (KB) on the line after it.
# usage: scripts/compare_torch.sh [ROUNDS] [HEADSUP_STEPS] [TORCH_ITERS]
set -euo pipefail
ROUNDS=${1:-3}
STEPS=${2:-30}
ITERS=${3:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${DATA:-$ROOT/../shared/data/tinyshakespeare.txt}
REF=${REF:-$ROOT/scripts/ref_gpt.py}
PY=${PY:-/tmp/torchenv/bin/python}
BIN=${BIN:-$ROOT/target/release/headsup}
for r in $(seq "$ROUNDS"); do
  for t in 1 2; do
    /usr/bin/time -f 'rss_kb %M' -o /tmp/hs_rss "$BIN" bench --config shakespeare-char --data "$DATA" \
      --threads "$t" --steps "$STEPS" --plain-steps 0 --no-generate
    echo "{\"impl\":\"headsup-rss\",\"threads\":$t,\"$(cat /tmp/hs_rss | tr ' ' '"' | sed 's/"/":/')}"
    /usr/bin/time -f 'rss_kb %M' -o /tmp/pt_rss "$PY" "$REF" "$DATA" --iters "$ITERS" --threads "$t" --eval-iters 1
    echo "{\"impl\":\"pytorch-rss\",\"threads\":$t,\"$(cat /tmp/pt_rss | tr ' ' '"' | sed 's/"/":/')}"
  done
done
