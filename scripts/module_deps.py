#!/usr/bin/env python3
# The module dependency graph of src/ (crate:: paths between top-level
# modules, tests left out) and its cycles. Usage: scripts/module_deps.py [REPO]
import re, os, sys, itertools
root = (sys.argv[1] if len(sys.argv) > 1 else ".") + "/src"
# module of a file: first path component under src (train, model, ...), or the file stem
def module(path):
    rel = os.path.relpath(path, root)
    parts = rel.split(os.sep)
    if len(parts) == 1:
        return parts[0][:-3]
    return parts[0]
def submodule(path):
    rel = os.path.relpath(path, root)[:-3]
    rel = rel.replace("/mod", "")
    return rel.replace(os.sep, "::")
edges = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith(".rs"): continue
        p = os.path.join(d, f)
        text = open(p).read()
        text = re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", text, flags=re.S)
        a = submodule(p)
        for m in re.findall(r"crate::([a-z_]+(?:::[a-z_]+)?)", text):
            edges.setdefault(a, set()).add(m)
        if module(p) == "main": 
            for m in re.findall(r"headsup::([a-z_]+)", text):
                edges.setdefault(a, set()).add(m)
top = {}
for a, bs in edges.items():
    ta = a.split("::")[0]
    for b in bs:
        tb = b.split("::")[0]
        if ta != tb:
            top.setdefault(ta, set()).add(tb)
for a in sorted(top): print(f"{a:12} -> {', '.join(sorted(top[a]))}")
# cycles among top-level modules
import collections
def cycles(g):
    out = []
    for a in g:
        for b in g[a]:
            if a in g.get(b, ()) and a < b: out.append((a, b))
    return out
# full SCC
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
def strong(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in top.get(v, ()):
        if w not in idx: strong(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        s = []
        while True:
            w = st.pop(); on.discard(w); s.append(w)
            if w == v: break
        if len(s) > 1: sccs.append(sorted(s))
for v in list(top):
    if v not in idx: strong(v)
print("cycles (strongly connected groups of top-level modules):", sccs or "none")
# model -> train?
bad = [(a, b) for a, bs in edges.items() for b in bs if a.startswith("model") and b.startswith("train")]
print("model -> train imports:", bad or "none")
