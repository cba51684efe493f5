"""The layout's rules, read off the real import graph of `app/` (grimp, as import-linter reads it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
MOST_LINES = 400


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("app", cache_dir=None)


def _cycle(graph: grimp.ImportGraph) -> list[str] | None:
    """One import cycle among the modules of `app`, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(imported) == 1:
                return [*path[path.index(imported) :], imported]
            if imported not in state and (found := visit(imported)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph.modules):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_the_import_graph_of_app_has_no_cycle(graph: grimp.ImportGraph) -> None:
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    looped = grimp.ImportGraph()
    for importer, imported in (("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")):
        looped.add_import(importer=importer, imported=imported)
    assert _cycle(looped) == ["a", "b", "c", "a"]


def test_the_platform_imports_no_domain_and_nothing_imports_the_entry_points(
    graph: grimp.ImportGraph,
) -> None:
    domains = {m.split(".")[1] for m in graph.modules if m.count(".") >= 2} - {
        "platform",
        "models",
        "entrypoints",
    }
    for module in graph.modules:
        imported = graph.find_modules_directly_imported_by(module)
        if module.startswith("app.platform"):
            assert not {i for i in imported if i.split(".")[1:2] and i.split(".")[1] in domains}
        if not module.startswith("app.entrypoints"):
            assert not {i for i in imported if i.startswith("app.entrypoints")}, module


def test_the_import_contracts_hold() -> None:
    linted = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert linted.returncode == 0, linted.stdout[-4000:]


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in (ROOT / "app").rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MOST_LINES
    }
    assert not long, long
