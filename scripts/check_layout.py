#!/usr/bin/env python3
"""Checks that the crate's imports point one way.

Lists every `crate::` / `super::` reference between the files of src/ (test modules
excluded), then fails when
  - two or more files import each other, directly or around a loop (a file-level cycle),
  - the top-level modules (src/<dir>/ or src/<file>.rs) form a cycle,
  - a library module (anything outside src/cli/, src/main.rs) uses clap or prints to stdout
    (println!/print!): flags and results belong to the command line.
Usage: scripts/check_layout.py [--edges]   (--edges also prints every module-level edge)
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"


def module_path(f: Path) -> tuple:
    rel = f.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_tests(text: str) -> str:
    """Drops `#[cfg(test)] mod … { … }` blocks and comments: test-only imports may go anywhere."""
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def references(text: str, here: tuple) -> set:
    """Absolute module paths named by `crate::…` and `super::…` paths (and `use` groups)."""
    refs = set()
    for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)(::\{([^;]*?)\})?", text, re.S):
        parts = m.group(1).split("::")
        if parts[0] == "crate":
            path = parts[1:]
        else:
            b = list(here)
            while parts and parts[0] == "super":
                parts.pop(0)
                b = b[:-1] if b else b
            path = b + parts
        refs.add(tuple(path))
        if m.group(3):
            for item in re.split(r",", m.group(3)):
                name = item.strip().split("::")[0].split(" ")[0]
                if name and name not in ("self", "*"):
                    refs.add(tuple(path) + (name,))
    return refs


def main() -> int:
    files = {}
    for f in sorted(SRC.rglob("*.rs")):
        files[module_path(f)] = f
    edges = {}
    for mod, f in files.items():
        text = strip_tests(f.read_text())
        targets = set()
        for ref in references(text, mod):
            # The longest prefix of the path that is a file of the crate.
            for k in range(len(ref), 0, -1):
                if ref[:k] in files:
                    if ref[:k] != mod and ref[:k] != ():
                        targets.add(ref[:k])
                    break
        # A parent's `mod x;` declaration and re-exports are not dependencies on its children.
        edges[mod] = {t for t in targets if t[: len(mod)] != mod or mod == ()}
    edges[()] = set()

    def name(m):
        return "/".join(m) or "lib"

    problems = []
    # File-level cycles (strongly connected components of more than one file).
    problems += [
        "import cycle between files: " + " -> ".join(name(m) for m in c)
        for c in sccs(edges)
    ]
    # Top-level modules.
    top = {}
    for a, ts in edges.items():
        if not a:
            continue
        for b in ts:
            if b and a[0] != b[0]:
                top.setdefault(a[0], set()).add(b[0])
    for a in {m[0] for m in files if m}:
        top.setdefault(a, set())
    problems += [
        "import cycle between top-level modules: " + " -> ".join(c) for c in sccs(top)
    ]
    # Flags and printing stay in the command line.
    for mod, f in files.items():
        if mod[:1] == ("cli",) or f.name == "main.rs":
            continue
        text = strip_tests(f.read_text())
        for pat, what in [
            (r"\bclap::", "clap"),
            (r"\bprintln!|\bprint!", "println!/print!"),
        ]:
            if re.search(pat, text):
                problems.append(f"{f.relative_to(ROOT)}: {what} in a library module (belongs in src/cli/)")

    if "--edges" in sys.argv:
        for a in sorted(top):
            print(f"{a} -> {', '.join(sorted(top[a])) or '(nothing)'}")
    n_edges = sum(len(v) for v in edges.values())
    print(f"[layout] {len(files)} files, {n_edges} file-level import edges, {len(top)} top-level modules")
    order = topo(top)
    if order:
        print("[layout] top-level modules, lowest first: " + " ".join(order))
    for p in problems:
        print(f"[layout] FAIL {p}")
    if problems:
        return 1
    print("[layout] ok: no import cycles; no clap or stdout printing outside src/cli/")
    return 0


def sccs(graph):
    """Tarjan's algorithm; returns the components with more than one node."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def topo(graph):
    """Modules ordered so each depends only on earlier ones; None when there is a cycle."""
    done, order = set(), []
    remaining = dict(graph)
    while remaining:
        ready = sorted(m for m, ds in remaining.items() if set(ds) <= done)
        if not ready:
            return None
        for m in ready:
            done.add(m)
            order.append(m)
            del remaining[m]
    return order


if __name__ == "__main__":
    sys.exit(main())
