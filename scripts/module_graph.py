#!/usr/bin/env python3
"""The module dependency graph of src/: which top-level module imports which.

Reads every `crate::NAME` path in src/**/*.rs (use lines and inline paths, not
comments), groups files by their top-level module (src/app/* -> app,
src/tui.rs -> tui), prints the edges, and exits 1 if the graph has a cycle
(naming it). `--dot` prints Graphviz instead.

    python3 scripts/module_graph.py          # edges, then "no cycle" or the cycles
    python3 scripts/module_graph.py --dot | dot -Tsvg > modules.svg
"""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def module_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    if len(rel.parts) == 1:
        return rel.stem
    return rel.parts[0]


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def graph():
    edges = {}
    for f in sorted(SRC.rglob("*.rs")):
        m = module_of(f)
        if m in ("main", "lib"):
            continue
        text = strip_comments(f.read_text(encoding="utf-8"))
        deps = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text))
        # `use crate::{a, b::c}` groups
        for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
            deps.update(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
        deps.discard(m)
        edges.setdefault(m, set()).update(deps)
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    edges = graph()
    if "--dot" in sys.argv:
        print("digraph modules {")
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f'  "{a}" -> "{b}";')
        print("}")
        return 0
    for a in sorted(edges):
        print(f"{a:12} -> {', '.join(sorted(edges[a])) or '(nothing)'}")
    found = cycles(edges)
    if not found:
        print("no cycle")
        return 0
    for c in found:
        print("cycle among: " + ", ".join(c))
    return 1


if __name__ == "__main__":
    sys.exit(main())
