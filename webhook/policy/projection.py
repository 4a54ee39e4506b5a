"""Which parts of ``object``/``oldObject``/``namespaceObject`` the expressions can reach.

Converting a Python object into CEL values costs about a microsecond per field, and an
object as the API server sends it (labels, annotations, managedFields, status) has
hundreds. The field paths every expression selects are known at load, so each request
hands CEL only those subtrees. A path that ends in a subtree keeps all of it, and any
use of a variable we cannot follow statically keeps the whole object, so expressions see
exactly the values they would see on the full object.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# A projection: None keeps everything below; a dict keeps only the named children.
Projection = dict[str, "Projection | None"] | None

PROJECTED_VARIABLES = ("object", "oldObject", "namespaceObject", "request")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_CHAIN = re.compile(
    r"(?<![\w.])(object|oldObject|namespaceObject|request)\b"
    r"((?:\s*\.\??\s*" + _IDENT + r"\b(?!\s*\())*)"
)
_PRESENCE_TEST = re.compile(r"has\(\s*$")
_SEGMENT = re.compile(r"\.\??\s*(" + _IDENT + ")")


class Presence(tuple[str, ...]):
    """A path only tested with ``has()``: its key must exist, its subtree is not needed."""

    __slots__ = ()


def selected_paths(source: str) -> dict[str, list[tuple[str, ...]]]:
    """Every field path each projected variable is selected along in ``source``."""
    found: dict[str, list[tuple[str, ...]]] = {}
    for match in _CHAIN.finditer(source):
        segments = tuple(_SEGMENT.findall(match.group(2)))
        closes = source[match.end() :].lstrip().startswith(")")
        if segments and closes and _PRESENCE_TEST.search(source[: match.start()]):
            segments = Presence(segments)
        found.setdefault(match.group(1), []).append(segments)
    return found


def merge(paths: Iterable[tuple[str, ...]]) -> Projection:
    """A projection tree keeping every path's subtree; an empty path keeps everything."""
    tree: dict[str, Any] = {}
    # Full paths first, so a presence test never narrows a subtree another path keeps whole.
    ordered = sorted(paths, key=lambda path: isinstance(path, Presence))
    for path in ordered:
        if not path:
            return None
        node = tree
        for depth, segment in enumerate(path):
            last = depth == len(path) - 1
            if last:
                if isinstance(path, Presence):
                    node.setdefault(segment, {})
                else:
                    node[segment] = None
            else:
                child = node.get(segment, {})
                if child is None:  # an ancestor is already kept whole
                    break
                node[segment] = child
                node = child
    return tree


def project(value: Any, projection: Projection) -> Any:
    if projection is None or not isinstance(value, Mapping):
        return value
    return {key: project(value[key], sub) for key, sub in projection.items() if key in value}
