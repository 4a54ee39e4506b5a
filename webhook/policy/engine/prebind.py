"""The plain fields a kind's policies read of ``object`` and ``request``, bound in one call
per request.

A binding (bindings.py) is otherwise bound when an expression first reads it: four Python
frames and a walk from the root each, about half a microsecond, for a value that is most
often a string or a has() test, read by every request of its kind. Here, at load, each
kind's object bindings become one generated function that walks the object once, sharing
the walk of common prefixes (``spec``), and binds what is plain: every has() test and every
scalar value, and every list or map when the review's body tells the object holds no null
(context._field hands those over as they are then, and walks them for nulls otherwise).
Anything else (a path that cannot be walked, which must fail where CEL reads it; a mapping
that is not a dict) is left alone, and the lazy binding (context.py) answers it exactly as
before, so the values expressions see never change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from webhook.policy.engine.bindings import Binding

# (the object, the request's own fields, the activation, whether the object holds no
# null: then a list or map of it is bound as it is, as context._field would hand it over)
Prebind = Callable[[Any, Any, dict[str, Any], bool], None]
# The roots walked, each as the generated function's parameter, and whether a list or map
# under it may be bound whole (``request`` may hold nulls whatever the body tells: its
# bindings' lists and maps stay lazy).
_ROOTS = {"object": ("value", True), "request": ("request", False)}


class _Node:
    """The bindings at one path of a root, and the paths below it."""

    __slots__ = ("below", "presence", "values")

    def __init__(self) -> None:
        self.presence: list[str] = []  # has() of this path
        self.values: list[str] = []  # this path's value
        self.below: dict[str, _Node] = {}


def prebinder(bindings: Iterable[Binding]) -> Prebind | None:
    """One function binding the plain ``object`` and ``request`` bindings among
    ``bindings`` into an activation (None: there are none)."""
    roots = {variable: _Node() for variable in _ROOTS}
    count = 0
    for binding in sorted(bindings, key=lambda b: b.name):
        if binding.variable not in roots or not binding.path:
            continue
        node = roots[binding.variable]
        for segment in binding.path:
            node = node.below.setdefault(segment, _Node())
        (node.presence if binding.presence else node.values).append(binding.name)
        count += 1
    if not count:
        return None
    lines = ["def prebind(value, request, env, whole):"]
    counter = iter(range(1_000_000))
    for variable, root in roots.items():
        if root.below:
            parameter, may_be_whole = _ROOTS[variable]
            lines.append(f"    if type({parameter}) is dict:")
            _write(lines, parameter, root, 2, counter, may_be_whole)
    # Names and fields are written with repr(): nothing a policy wrote is Python text.
    namespace: dict[str, Any] = {}
    try:
        exec(compile("\n".join(lines) + "\n", "<prebind>", "exec"), namespace)
    except (SyntaxError, RecursionError, MemoryError):
        return None  # nested deeper than Python's blocks allow: every binding stays lazy
    function: Prebind = namespace["prebind"]
    return function


def _write(lines: list[str], parent: str, node: _Node, depth: int,
           counter: Iterator[int], may_be_whole: bool) -> None:
    """Statements binding what lies below ``parent`` (a dict, tested by the caller)."""
    pad = "    " * depth
    whole = "whole or " if may_be_whole else ""
    for segment, child in node.below.items():
        value = f"v{next(counter)}"
        lines.append(f"{pad}{value} = {parent}.get({segment!r})")
        # As context._field: a field that is absent or null is not there.
        for name in child.presence:
            lines.append(f"{pad}env[{name!r}] = {value} is not None")
        if child.values:
            lines.append(f"{pad}if {value} is not None and ({whole}type({value}) is not dict "
                         f"and type({value}) is not list):")
            for name in child.values:
                lines.append(f"{pad}    env[{name!r}] = {value}")
        if child.below:
            lines.append(f"{pad}if type({value}) is dict:")
            _write(lines, value, child, depth + 1, counter, may_be_whole)
