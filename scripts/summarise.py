#!/usr/bin/env python3
"""Medians of scripts/compare_torch.sh output (JSON lines on stdin)."""
import json, statistics, sys
runs = {}
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    t = d.get("threads")
    if d.get("impl") == "pytorch":
        runs.setdefault(("pytorch", t), []).append(d["tokens_per_s"])
    elif d.get("impl") in ("headsup-rss", "pytorch-rss"):
        runs.setdefault((d["impl"], t), []).append(d["rss_kb"] / 1024)
    elif "train_tokens_per_sec" in d:
        runs.setdefault(("headsup", t), []).append(d["train_tokens_per_sec"]["fused"])
for t in (1, 2):
    h = statistics.median(runs.get(("headsup", t), [0]))
    p = statistics.median(runs.get(("pytorch", t), [0]))
    hr = max(runs.get(("headsup-rss", t), [0]))
    pr = max(runs.get(("pytorch-rss", t), [0]))
    print(f"threads={t} headsup={h:.0f} ({runs.get(('headsup', t))}) pytorch={p:.0f} ({runs.get(('pytorch', t))}) "
          f"ratio={h / max(p, 1e-9):.2f} rss_headsup={hr:.0f}MB rss_pytorch={pr:.0f}MB")
