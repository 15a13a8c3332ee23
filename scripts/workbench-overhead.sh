#!/usr/bin/env bash
# Alternating headless (A) and workbench (B) runs of the same config; prints tokens/s of each.
# Needs tmux; run from the repository root after `cargo build --release`.
BIN=${BIN:-target/release/headsup}
OUT=${OUT:-/tmp/ab}; mkdir -p "$OUT"
SETS="--set train.max_iters=800 --set train.threads=1 --set train.eval_interval=0 --set train.checkpoint_interval=0 --set train.log_interval=10"
tps() { python3 -c "
import json,sys
rows=[json.loads(l) for l in open('$1/metrics.jsonl') if l.strip()]
st=[r for r in rows if r.get('event')=='step']
print(round(800*16*64/st[-1]['elapsed_secs']))"; }
for i in 1 2 3; do
  rm -rf $OUT/h$i $OUT/t$i
  $BIN train --out $OUT/h$i $SETS > /dev/null
  echo "A headless run $i: $(tps $OUT/h$i) tok/s"
  tmux -L ab kill-server 2>/dev/null
  tmux -L ab new-session -d -s ab -x 120 -y 40 "TERM=xterm-256color $BIN tui --out $OUT/t$i $SETS"
  until grep -q '"finished"' $OUT/t$i/metrics.jsonl 2>/dev/null; do sleep 0.5; done
  tmux -L ab send-keys -t ab q; sleep 0.5; tmux -L ab send-keys -t ab y; sleep 1; tmux -L ab kill-server 2>/dev/null
  echo "B workbench run $i: $(tps $OUT/t$i) tok/s"
done
