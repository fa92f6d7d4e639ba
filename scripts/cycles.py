"""Print every import cycle in the reconciler package; exit 1 if there is one.

    python scripts/cycles.py [PREFIX ...]

A cycle is a strongly connected component of more than one module in the import graph, as grimp
builds it (imports under TYPE_CHECKING and inside functions count: each one ties the modules as
surely as a top-level import). Modules under a PREFIX (reconciler.emulator, say) are left out.
"""

from __future__ import annotations

import sys

import grimp


def cycles(package: str = "reconciler", exclude: tuple[str, ...] = ()) -> list[list[str]]:
    """The import cycles of `package`, each as its sorted modules, largest first."""
    graph = grimp.build_graph(package)
    kept = {
        module for module in graph.modules
        if not any(module == prefix or module.startswith(prefix + ".") for prefix in exclude)
    }  # fmt: skip
    edges = {
        module: {m for m in graph.find_modules_directly_imported_by(module) if m in kept}
        for module in kept
    }
    found = [sorted(c) for c in _components(edges) if len(c) > 1]
    return sorted(found, key=lambda c: (-len(c), c))


def _components(edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of a directed graph (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def main(argv: list[str]) -> int:
    found = cycles(exclude=tuple(argv))
    for cycle in found:
        print(f"{len(cycle)} modules: {', '.join(cycle)}")
    if not found:
        print("no import cycles")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
