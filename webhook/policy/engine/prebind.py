"""The plain fields a kind's policies read of ``object``, bound in one call per request.

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

# (the object, the activation, whether the object holds no null: then a list or map is
# bound as it is, as context._field would hand it over)
Prebind = Callable[[Any, dict[str, Any], bool], None]


class _Node:
    """The bindings at one path of the object, and the paths below it."""

    __slots__ = ("below", "presence", "values")

    def __init__(self) -> None:
        self.presence: list[str] = []  # has() of this path
        self.values: list[str] = []  # this path's value
        self.below: dict[str, _Node] = {}


def prebinder(bindings: Iterable[Binding]) -> Prebind | None:
    """One function binding the plain ``object`` bindings among ``bindings`` into an
    activation (None: there are none)."""
    root = _Node()
    count = 0
    for binding in sorted(bindings, key=lambda b: b.name):
        if binding.variable != "object" or not binding.path:
            continue
        node = root
        for segment in binding.path:
            node = node.below.setdefault(segment, _Node())
        (node.presence if binding.presence else node.values).append(binding.name)
        count += 1
    if not count:
        return None
    lines = ["def prebind(value, env, whole):", "    if type(value) is not dict:", "        return"]
    _write(lines, "value", root, 1, iter(range(1_000_000)))
    # Names and fields are written with repr(): nothing a policy wrote is Python text.
    namespace: dict[str, Any] = {}
    try:
        exec(compile("\n".join(lines) + "\n", "<prebind>", "exec"), namespace)
    except (SyntaxError, RecursionError, MemoryError):
        return None  # nested deeper than Python's blocks allow: every binding stays lazy
    function: Prebind = namespace["prebind"]
    return function


def _write(lines: list[str], parent: str, node: _Node, depth: int,
           counter: Iterator[int]) -> None:
    """Statements binding what lies below ``parent`` (a dict, tested by the caller)."""
    pad = "    " * depth
    for segment, child in node.below.items():
        value = f"v{next(counter)}"
        lines.append(f"{pad}{value} = {parent}.get({segment!r})")
        # As context._field: a field that is absent or null is not there.
        for name in child.presence:
            lines.append(f"{pad}env[{name!r}] = {value} is not None")
        if child.values:
            lines.append(f"{pad}if {value} is not None and (whole or type({value}) is not dict "
                         f"and type({value}) is not list):")
            for name in child.values:
                lines.append(f"{pad}    env[{name!r}] = {value}")
        if child.below:
            lines.append(f"{pad}if type({value}) is dict:")
            _write(lines, value, child, depth + 1, counter)
