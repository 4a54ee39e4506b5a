"""The import graph of the whole package has no circles: not at module level, not under
``TYPE_CHECKING``, not through a function-local import.

import-linter's layers contracts (pyproject.toml) forbid imports that run up a layer; a
circle between two modules of one layer would pass them, so this test looks for any. It
reads the graph with grimp, the library import-linter itself builds on, which counts
every import statement wherever it stands.
"""

from __future__ import annotations

import grimp

WEBHOOK = "webhook"


def circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, sorted(graph.find_modules_directly_imported_by(root))))
        while work:
            module, targets = work[-1]
            if targets:
                target = targets.pop()
                if target not in graph.modules:
                    continue
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, sorted(graph.find_modules_directly_imported_by(target))))
                elif target in on_stack:
                    low[module] = min(low[module], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_package_has_no_import_circles() -> None:
    graph = grimp.build_graph(WEBHOOK)
    assert "webhook.policy.engine.evaluation" in graph.modules
    assert circles(graph) == []


def test_the_circle_finder_finds_a_circle_however_it_is_imported() -> None:
    # The finder itself must be able to fail: a graph with one circle of three modules,
    # as the policy decision -> exceptions -> model -> decision circle was.
    graph = grimp.ImportGraph()
    for module in ("a.decision", "a.exceptions", "a.model", "a.kinds"):
        graph.add_module(module)
    graph.add_import(importer="a.decision", imported="a.exceptions")
    graph.add_import(importer="a.exceptions", imported="a.model")
    graph.add_import(importer="a.model", imported="a.decision")
    graph.add_import(importer="a.model", imported="a.kinds")
    assert circles(graph) == [["a.decision", "a.exceptions", "a.model"]]
