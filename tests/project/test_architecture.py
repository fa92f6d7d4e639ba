"""The shape of the package: its imports go one way, so each layer can be read without the next."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import grimp

from reconciler import kinds
from reconciler.model import Action, Kind

ROOT = Path(__file__).resolve().parents[2]


def test_the_reconciler_has_no_import_cycle_the_emulator_included() -> None:
    # Imports under TYPE_CHECKING and inside functions count too (scripts/cycles.py says why).
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cycles.py")],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == "no import cycles"


def test_the_cycle_finder_sees_a_cycle_of_two_modules_and_nothing_else() -> None:
    spec = importlib.util.spec_from_file_location("cycles", ROOT / "scripts" / "cycles.py")
    assert spec is not None and spec.loader is not None
    finder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(finder)
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": set()}
    assert [sorted(c) for c in finder._components(graph) if len(c) > 1] == [["a", "b"]]
    assert finder.cycles() == []
    assert len(grimp.build_graph("reconciler").modules) > 80


def _modules() -> list[tuple[str, ast.Module]]:
    """Every module of the reconciler outside the emulator, parsed, by its path under reconciler/."""
    package = ROOT / "reconciler"
    return [
        (path.relative_to(package).as_posix(), ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(package.rglob("*.py"))
        if "emulator" not in path.relative_to(package).parts
    ]


# Two formats that are versioned each by itself, at the same number today by coincidence.
DISTINCT_FACTS = {"FORMAT_VERSION"}


def _type_variable(value: ast.expr) -> bool:
    """`T = TypeVar("T")`: a name each generic module binds for itself, not a fact."""
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "TypeVar"
    )


def test_each_constant_is_defined_in_one_module() -> None:
    """A fact written twice drifts apart: the same upper-case name bound to the same value in two
    modules is one fact, defined where every user may import it."""
    where: dict[tuple[str, str], list[str]] = {}
    for module, tree in _modules():
        for node in tree.body:
            if isinstance(node, ast.Assign) and not _type_variable(node.value):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id.lstrip("_").isupper():
                        key = (target.id.lstrip("_"), ast.unparse(node.value))
                        where.setdefault(key, []).append(module)
    twice = {
        name: modules
        for (name, _), modules in where.items()
        if len(modules) > 1 and name not in DISTINCT_FACTS
    }
    assert twice == {}


def test_which_actions_change_something_is_said_once() -> None:
    assert {action for action in Action if not action.changes_something} == {
        Action.NOOP, Action.SKIP,
    }  # fmt: skip
    spelled = [
        module
        for module, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Tuple)
        and {ast.unparse(element) for element in node.elts} >= {"Action.NOOP", "Action.SKIP"}
    ]
    assert spelled == []


def test_one_function_builds_every_request_path() -> None:
    """Names are escaped into API paths by `names.api_path` alone: the client and the kinds'
    `ResourceKind.path` cannot disagree on how a name becomes a path segment."""
    builders = [
        module
        for module, tree in _modules()
        if module == "client.py" or module.startswith("kinds/")
        for node in ast.walk(tree)
        if (isinstance(node, ast.Name) and node.id == "quote")
        or (
            isinstance(node, ast.JoinedStr)
            and node.values
            and isinstance(node.values[0], ast.Constant)
            and str(node.values[0].value).startswith("/")
        )
    ]
    assert builders == []
    assert kinds.of(Kind.CONNECTION).path("..") == "/connections/%2E%2E"  # one segment, kept
    assert kinds.of(Kind.TABLE).path("a/b?c") == "/tables/a%2Fb%3Fc"
