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
_PRESENCE_TEST = re.compile(r"has\(\s*$")
_SEGMENT = re.compile(r"\.\??\s*(" + _IDENT + ")")


class Presence(tuple[str, ...]):
    """A path only tested with ``has()``: its key must exist, its subtree is not needed."""

    __slots__ = ()


ELEMENTS = "[]"  # a path segment meaning "each element of this list"
_MACRO = re.compile(r"\s*\.\s*(all|exists|exists_one|map|filter)\s*\(\s*(" + _IDENT + r")\s*,")
_ANY_MACRO = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*(" + _IDENT + r")\s*,")
_NULL_TEST = re.compile(r"\s*[!=]=\s*null\b")


def selected_paths(source: str) -> dict[str, list[tuple[str, ...]]]:
    """Every field path each projected variable is selected along in ``source``.

    A comprehension over a selected list (``object.spec.rules.all(r, r.host != '')``)
    selects, for each element, only the fields its variable selects (``rules[].host``).
    """
    found: dict[str, list[tuple[str, ...]]] = {}
    # Where comprehension variables are declared: those names are not uses.
    declarations = {m.start(1) for m in _ANY_MACRO.finditer(source)}
    # (name, root variable, path to it, pattern); roots first, aliases as they appear
    work: list[tuple[str, str, tuple[str, ...], re.Pattern[str]]] = [
        (root, root, (), _chain_pattern(root)) for root in PROJECTED_VARIABLES
    ]
    seen_aliases: set[tuple[str, str, tuple[str, ...]]] = set()

    def alias(name: str, root: str, elements: tuple[str, ...]) -> None:
        if (name, root, elements) not in seen_aliases:
            seen_aliases.add((name, root, elements))
            work.append((name, root, elements, _chain_pattern(name)))

    while work:
        _, root, prefix, pattern = work.pop(0)
        for match in pattern.finditer(source):
            if match.start() in declarations:
                continue
            segments = tuple(_SEGMENT.findall(match.group(1)))
            path = prefix + segments
            end = match.end()
            macro = _MACRO.match(source, end)
            if macro is not None:
                elements = (*path, ELEMENTS)
                # The list must keep its length (and a map its keys) even if no field of
                # an element is read.
                found.setdefault(root, []).append(Presence(elements))
                alias(macro.group(2), root, elements)
                # `.filter(x, ...)` yields the same elements: a comprehension chained
                # after it ranges over them too.
                while macro is not None and macro.group(1) == "filter":
                    after = _closing_paren(source, macro.end() - 1)
                    macro = _MACRO.match(source, after) if after is not None else None
                    if macro is not None:
                        alias(macro.group(2), root, elements)
                continue
            rest = source[end:]
            closes = rest.lstrip().startswith(")")
            presence = closes and _PRESENCE_TEST.search(source[: match.start()])
            if segments and (presence or _NULL_TEST.match(rest)):
                path = Presence(path)
            found.setdefault(root, []).append(path)
    return found


def _closing_paren(source: str, start: int) -> int | None:
    """Index just past the parenthesis matching the one before ``start``."""
    depth = 1
    i = start
    quote = ""
    while i < len(source):
        char = source[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _chain_pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        r"(?<![\w.])" + re.escape(name) + r"\b((?:\s*\.\??\s*" + _IDENT + r"\b(?!\s*\())*)"
    )


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


_SCALARS = frozenset({str, int, float, bool, type(None)})


def project(value: Any, projection: Projection) -> Any:
    if projection is None or type(value) in _SCALARS:
        return value
    if type(value) is dict or isinstance(value, Mapping):  # the exact check is the fast path
        if ELEMENTS in projection:
            return value  # a comprehension over a map iterates its keys: keep it whole
        return {key: project(value[key], sub) for key, sub in projection.items() if key in value}
    if type(value) is list and ELEMENTS in projection and len(projection) == 1:
        element = projection[ELEMENTS]
        return [project(item, element) for item in value]
    return value
