#!/usr/bin/env python3
"""Fails when two modules of src/ import each other (DESIGN.md: data flows one way).

Compared are the top-level modules of the crate, and inside each module directory its
children with each other (e.g. mqtt::link and mqtt::connect). A reference is any
`crate::…` or `super::…` path, in a `use` or inline. A child using its parent's items
and a parent declaring or re-exporting its children are the normal shape and do not
count; nor do `#[cfg(test)]` modules (a test may build its fixture from any module).
Reports every pair that refers to each other, and longer loops among siblings.

    python3 .ci/module-cycles.py [src]
"""
import os
import re
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "src"

TOKENS = re.compile(
    r'//[^\n]*|/\*.*?\*/|r(#*)".*?"\1|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])\'', re.S
)
TEST_MODULE = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{")
PATH = re.compile(r"\b((?:crate|super)(?:::(?:super|[A-Za-z_]\w*))+)")


def module_of(path):
    parts = os.path.relpath(path, SRC)[:-3].split(os.sep)
    return tuple(parts[:-1] if parts[-1] in ("mod", "lib", "main") else parts)


def strip(text):
    """Blanks comments, strings and char literals, and drops test modules."""
    text = TOKENS.sub(lambda m: "" if m.group(0).startswith("/") else '""', text)
    out, pos = [], 0
    for m in TEST_MODULE.finditer(text):
        if m.start() < pos:
            continue
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out.append(text[pos : m.start()])
        pos = i
    out.append(text[pos:])
    return "".join(out)


def use_paths(tree, prefix=()):
    """`a::{b, c::{d, e as f}}` -> [a::b, a::c::d, a::c::e]."""
    parts, depth, cur = [], 0, ""
    for ch in tree:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for part in filter(None, parts):
        m = re.match(r"^(.*?)::\{(.*)\}$", part)
        if m:
            yield from use_paths(m.group(2), prefix + tuple(m.group(1).split("::")))
        elif part.startswith("{"):
            yield from use_paths(part[1:-1], prefix)
        else:
            yield prefix + tuple(part.split("@")[0].split("::"))


def references(path):
    me = module_of(path)
    with open(path, encoding="utf-8") as f:
        text = strip(f.read())
    found = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        tree = re.sub(r"\s+as\s+", "@", m.group(1))
        found += use_paths(re.sub(r"\s+", "", tree))
    found += [tuple(m.group(1).split("::")) for m in PATH.finditer(text)]
    for p in found:
        if not p or p[0] not in ("crate", "super"):
            continue
        base, rest = (), p[1:]
        if p[0] == "super":
            base, rest = me, p
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
        yield me, base + tuple(s for s in rest if s not in ("self", "*", ""))


def main():
    files = [
        os.path.join(d, n) for d, _, names in os.walk(SRC) for n in names if n.endswith(".rs")
    ]
    modules = {module_of(f) for f in files}
    edges = {}
    for f in sorted(files):
        for me, target in references(f):
            common = 0
            while common < min(len(me), len(target)) and me[common] == target[common]:
                common += 1
            if common >= len(me) or common >= len(target):
                continue  # itself, its parent's items or its own children
            a, b = me[: common + 1], target[: common + 1]
            if not any(m[: len(b)] == b for m in modules):
                continue  # an item of the common parent, not a sibling module
            edges.setdefault(a, {}).setdefault(b, set()).add(
                f"{os.path.relpath(f, SRC)} uses {'::'.join(target)}"
            )

    name = "::".join
    bad = 0
    for a in sorted(edges):
        for b in sorted(edges[a]):
            if a < b and a in edges.get(b, {}):
                bad += 1
                print(f"{name(a)} and {name(b)} import each other:")
                for why in sorted(edges[a][b])[:5] + sorted(edges[b][a])[:5]:
                    print(f"    {why}")

    # Longer loops: strongly connected sets of siblings (Tarjan).
    index, low, stack, on, sccs = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 2:
                sccs.append(sorted(scc))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    for scc in sccs:
        bad += 1
        print("a loop of imports: " + ", ".join(name(m) for m in scc))

    if bad:
        print(f"{bad} import cycle(s) in {SRC}/: move the shared item to the lower module")
        return 1
    print(f"No import cycles among {len(modules)} modules of {SRC}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
