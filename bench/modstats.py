"""The shape of a package: module count, module sizes and the depth of its import graph.

    python -m bench.modstats [PACKAGE_DIR ...]     (default: warmci)

Module size is the line count of each .py file. The import graph holds the
package's own modules and the imports between them (any import statement,
also inside functions: a lazy import is still a dependency); its depth is
the number of modules on the longest chain of imports. Modules that import
each other (a cycle) count as one node, and the cycles are listed.
"""
from __future__ import annotations

import ast
import os
import statistics
import sys
from graphlib import TopologicalSorter
from pathlib import Path


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the package dir."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules `name` imports (`from pkg import mod` counts as importing pkg.mod)."""
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name if is_pkg else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                base = f"{pkg}.{base}" if base else pkg
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in known else base)
    return found


def _sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan), iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                out.append(sorted(comp))
    return out


def stats(root: Path) -> dict[str, object]:
    mods = modules(root)
    sizes = {n: len(p.read_text().splitlines()) for n, p in mods.items()}
    graph = {n: imports(n, p, set(mods)) for n, p in mods.items()}
    comps = _sccs(graph)
    comp_of = {m: i for i, c in enumerate(comps) for m in c}
    dag: dict[int, set[int]] = {i: set() for i in range(len(comps))}
    for n, deps in graph.items():
        dag[comp_of[n]] |= {comp_of[d] for d in deps if comp_of[d] != comp_of[n]}
    depth: dict[int, int] = {}
    for c in TopologicalSorter(dag).static_order():  # dependencies first
        depth[c] = 1 + max((depth[d] for d in dag[c]), default=0)
    deepest = max(depth, key=lambda c: depth[c])
    chain = [comps[deepest][0]]
    while dag[comp_of[chain[-1]]]:
        chain.append(comps[max(dag[comp_of[chain[-1]]], key=lambda d: depth[d])][0])
    largest = max(sizes, key=lambda n: sizes[n])
    return {
        "package": root.name,
        "modules": len(mods),
        "median_lines": statistics.median(sizes.values()),
        "largest": (largest, sizes[largest]),
        "depth": depth[deepest],
        "chain": chain,
        "cycles": [c for c in comps if len(c) > 1],
    }


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [Path(__file__).resolve().parent.parent / "warmci"]
    for root in roots:
        s = stats(root.resolve())
        print(f"{s['package']}: {s['modules']} modules, median {s['median_lines']} lines, "
              f"largest {s['largest'][0]} ({s['largest'][1]} lines), import depth {s['depth']}")
        print(f"  deepest chain: {' -> '.join(s['chain'])}")  # type: ignore[arg-type]
        for cycle in s["cycles"]:  # type: ignore[attr-defined]
            print(f"  import cycle: {', '.join(cycle)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(main(sys.argv[1:]))
