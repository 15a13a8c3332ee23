#!/usr/bin/env bash
# The issue's whole-process measure on the baby config: `headsup train`
# (300 iterations, 20 evaluation batches per split at the end, a checkpoint
# at the end) against `scripts/ref_gpt.py --iters 300` (20 batches per split
# at the end, PyTorch's import included), alternated, tokens trained over each
# process's wall time. One line per pair, with the CPU named. Both do the
# same work: headsup's evaluation before the first step (nanoGPT's habit, on
# by default) is turned off, as the reference has none; EVAL_ON_START=true
# keeps it (40 more evaluation batches for headsup only).
#
# usage: scripts/compare_whole.sh [ROUNDS]   (THREADS="1 2", PRECISION=fp32|bf16,
#        DATA, PY, BIN as in compare_torch.sh)
set -euo pipefail
ROUNDS=${1:-3}
THREADS=${THREADS:-1 2}
PRECISION=${PRECISION:-fp32}
EVAL_ON_START=${EVAL_ON_START:-false}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${DATA:-$ROOT/../shared/data/tinyshakespeare.txt}
PY=${PY:-/tmp/torchenv/bin/python}
BIN=${BIN:-$ROOT/target/release/headsup}
for f in "$DATA" "$PY" "$BIN"; do
  [ -e "$f" ] || { echo "compare_whole.sh: $f is missing (set DATA, PY or BIN)" >&2; exit 1; }
done
. "$ROOT/scripts/cpu.sh"
echo "cpu: $CPU [$FLAGS], precision $PRECISION, headsup eval_on_start $EVAL_ON_START"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
TOKENS=$((300 * 12 * 64))
now() { date +%s.%N; }
for r in $(seq "$ROUNDS"); do
  for t in $THREADS; do
    rm -rf "$TMP/run"
    s=$(now)
    "$BIN" train --config "$ROOT/samples/shakespeare-char.toml" --data "$DATA" \
      --set train.max_iters=300 --set train.eval_interval=1000 --set train.eval_iters=20 \
      --set train.eval_on_start="$EVAL_ON_START" \
      --set train.threads="$t" --set train.precision="$PRECISION" --out "$TMP/run" > "$TMP/hs.log" 2>&1
    e=$(now)
    h=$(python3 -c "print(round($TOKENS / ($e - $s)))")
    s=$(now)
    "$PY" "$ROOT/scripts/ref_gpt.py" "$DATA" --iters 300 --threads "$t" --precision "$PRECISION" > "$TMP/py.log" 2>&1
    e=$(now)
    p=$(python3 -c "print(round($TOKENS / ($e - $s)))")
    inloop=$(grep -o '"tokens_per_s": [0-9.]*' "$TMP/py.log" | cut -d' ' -f2 | cut -d. -f1)
    echo "round $r threads $t: headsup $h tok/s, pytorch $p tok/s, ratio $(python3 -c "print(round($h / $p, 2))") (pytorch in-loop $inloop)"
  done
done
