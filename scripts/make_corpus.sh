#!/usr/bin/env bash
# A large text corpus for the data-at-scale measurements: tinyshakespeare
# repeated N times (200: 223 MB; 1900: about 2.1 GB). Never commit the output.
# usage: scripts/make_corpus.sh N OUT [SOURCE]
set -euo pipefail
N=${1:?usage: scripts/make_corpus.sh N OUT [SOURCE]}
OUT=${2:?usage: scripts/make_corpus.sh N OUT [SOURCE]}
SRC=${3:-$(cd "$(dirname "$0")/.." && pwd)/../shared/data/tinyshakespeare.txt}
[ -f "$SRC" ] || { echo "error: $SRC is missing; give the source text as the third argument" >&2; exit 1; }
tmp="$OUT.tmp.$$"
trap 'rm -f "$tmp"' EXIT
for _ in $(seq "$N"); do cat "$SRC"; done > "$tmp"
mv "$tmp" "$OUT"
trap - EXIT
ls -l "$OUT"
