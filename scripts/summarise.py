#!/usr/bin/env python3
"""Medians of scripts/compare_torch.sh output (JSON lines on stdin), per
preset, CPU and thread count: tokens/s, the headsup/PyTorch ratio, and the
largest peak RSS of each."""
import json, statistics, sys

runs = {}
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    key = (d["preset"], d.get("precision", "fp32"), d["cpu"], d["simd_flags"], d["headsup_simd"], d["threads"])
    r = d["result"]
    tps = r["train_tokens_per_sec"]["fused"] if d["impl"] == "headsup" else r["tokens_per_s"]
    slot = runs.setdefault(key, {"headsup": [], "pytorch": [], "rss_headsup": [], "rss_pytorch": []})
    slot[d["impl"]].append(tps)
    slot["rss_" + d["impl"]].append(d["rss_kb"] / 1024)
for (preset, prec, cpu, flags, simd, t), s in sorted(runs.items()):
    h = statistics.median(s["headsup"] or [0])
    p = statistics.median(s["pytorch"] or [0])
    hr, pr = max(s["rss_headsup"] or [0]), max(s["rss_pytorch"] or [0])
    print(f"{preset} {prec} | {cpu} [{flags}] | headsup kernels {simd} | threads {t}: "
          f"headsup {h:.0f} tok/s {[round(x) for x in s['headsup']]}, "
          f"pytorch {p:.0f} tok/s {[round(x) for x in s['pytorch']]}, ratio {h / max(p, 1e-9):.2f}; "
          f"peak RSS headsup {hr:.0f} MB, pytorch {pr:.0f} MB, ratio {hr / max(pr, 1e-9):.2f}")
