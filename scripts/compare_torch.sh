#!/usr/bin/env bash
# Alternating whole-process runs (headsup, PyTorch, headsup, PyTorch, ...) of
# `headsup bench` and the PyTorch reference on one preset, at the given thread
# counts. One JSON line per run on stdout, each naming the preset, the CPU
# (model name) and its SIMD flags, the kernel level headsup ran at, and the
# process's peak RSS (from /usr/bin/time). scripts/summarise.py gives medians.
#
# usage: scripts/compare_torch.sh [ROUNDS] [HEADSUP_STEPS] [TORCH_ITERS]
#   PRESET=baby|gpt2-small (default baby)  THREADS="1 2"  HEADSUP_SIMD=avx2|avx512|portable
#   PRECISION=fp32|bf16 (default fp32; bf16: headsup's train.precision = "bf16"
#   against PyTorch's CPU autocast to bfloat16)
#   baby:       nanoGPT's baby config (4L/4H/128, block 64, batch 12), tinyshakespeare by character
#   gpt2-small: GPT-2-small shapes (12L/12H/768, block 256, batch 4), same data
set -euo pipefail
ROUNDS=${1:-3}
STEPS=${2:-30}
ITERS=${3:-60}
PRESET=${PRESET:-baby}
THREADS=${THREADS:-1 2}
PRECISION=${PRECISION:-fp32}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${DATA:-$ROOT/../shared/data/tinyshakespeare.txt}
if [ -z "${REF:-}" ]; then
  if [ -f "$ROOT/scripts/ref_gpt.py" ]; then REF=$ROOT/scripts/ref_gpt.py; else REF=$ROOT/../shared/bench/ref_gpt.py; fi
fi
PY=${PY:-/tmp/torchenv/bin/python}
BIN=${BIN:-$ROOT/target/release/headsup}
for f in "$DATA" "$REF" "$PY" "$BIN"; do
  [ -e "$f" ] || { echo "compare_torch.sh: $f is missing (set DATA, REF, PY or BIN)" >&2; exit 1; }
done
case "$PRESET" in
  baby)
    HS_ARGS=(--preset baby)
    PT_ARGS=(--layers 4 --heads 4 --embd 128 --block 64 --batch 12) ;;
  gpt2-small)
    HS_ARGS=(--preset gpt2-small)
    PT_ARGS=(--layers 12 --heads 12 --embd 768 --block 256 --batch 4) ;;
  *) echo "compare_torch.sh: PRESET must be baby or gpt2-small, got $PRESET" >&2; exit 1 ;;
esac
. "$ROOT/scripts/cpu.sh"
TAG="\"preset\":\"$PRESET\",\"precision\":\"$PRECISION\",\"cpu\":\"$CPU\",\"simd_flags\":\"$FLAGS\",\"headsup_simd\":\"${HEADSUP_SIMD:-default}\""
RSS=$(mktemp)
trap 'rm -f "$RSS"' EXIT
for r in $(seq "$ROUNDS"); do
  for t in $THREADS; do
    line=$(/usr/bin/time -f '%M' -o "$RSS" "$BIN" bench "${HS_ARGS[@]}" --data "$DATA" \
      --threads "$t" --steps "$STEPS" --plain-steps 0 --no-generate --set train.precision="$PRECISION" | tail -1)
    echo "{\"impl\":\"headsup\",\"threads\":$t,$TAG,\"rss_kb\":$(tail -1 "$RSS"),\"result\":$line}"
    line=$(/usr/bin/time -f '%M' -o "$RSS" "$PY" "$REF" "$DATA" "${PT_ARGS[@]}" --iters "$ITERS" \
      --threads "$t" --eval-iters 1 --precision "$PRECISION" | tail -1)
    echo "{\"impl\":\"pytorch\",\"threads\":$t,$TAG,\"rss_kb\":$(tail -1 "$RSS"),\"result\":$line}"
  done
done
