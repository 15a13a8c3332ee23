#!/usr/bin/env python3
# Compares two metrics.jsonl files record by record: same events in the same
# order, every field of the first present and equal in the second (timings and
# paths aside); fields only in the second are listed (a documented superset).
# Usage: scripts/compare_metrics.py BEFORE/metrics.jsonl AFTER/metrics.jsonl
import json, sys
VOLATILE = {"elapsed_secs", "tokens_per_sec", "path"}
def load(p): return [json.loads(l) for l in open(p) if l.strip()]
a, b = load(sys.argv[1]), load(sys.argv[2])
print(f"{sys.argv[1]}: {len(a)} records; {sys.argv[2]}: {len(b)} records")
assert len(a) == len(b), "record counts differ"
for i, (x, y) in enumerate(zip(a, b)):
    assert x["event"] == y["event"], (i, x, y)
    missing = set(x) - set(y)
    extra = set(y) - set(x)
    assert not missing, (i, "missing", missing)
    diff = [k for k in x if k not in VOLATILE and x[k] != y[k]]
    assert not diff, (i, diff, x, y)
    note = f" extra fields {sorted(extra)}" if extra else ""
    print(f"  {i:2} {x['event']:10} step {x.get('step')}: fields {sorted(x)} equal (timings and paths aside){note}")
print("same records")
