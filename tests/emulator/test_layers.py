"""The emulator's modules form layers: no import cycle, TYPE_CHECKING imports included."""

from __future__ import annotations

import pytest

grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (the dev extra)")

PACKAGE = "reconciler.emulator"


def cycles(modules: set[str], imported_by: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(sorted(imported_by[root])))]
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
                    work.append((child, iter(sorted(imported_by[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def emulator_graph() -> tuple[set[str], dict[str, set[str]]]:
    graph = grimp.build_graph("reconciler")  # TYPE_CHECKING and function-level imports count
    modules = {m for m in graph.modules if m == PACKAGE or m.startswith(PACKAGE + ".")}
    imported_by = {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}
    return modules, imported_by


def test_the_emulator_has_no_import_cycle() -> None:
    modules, imported_by = emulator_graph()
    assert len(modules) > 20  # the graph is the package's, not an empty one
    assert cycles(modules, imported_by) == []


def test_the_cycle_finder_sees_a_cycle_of_two_modules() -> None:
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": set()}
    assert cycles(set(graph), graph) == [["a", "b"]]
