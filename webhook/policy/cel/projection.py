"""Which parts of ``object``/``oldObject``/``namespaceObject`` the expressions can reach.

Converting a Python object into CEL values costs about a microsecond per field, and an
object as the API server sends it (labels, annotations, managedFields, status) has
hundreds. The field paths every expression selects are known at load, so each request
hands CEL only those subtrees. A path that ends in a subtree keeps all of it, and any
use of a variable we cannot follow statically keeps the whole object, so expressions see
exactly the values they would see on the full object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from webhook.policy.cel.references import literal_key
from webhook.policy.cel.syntax import (
    Call,
    Comprehension,
    Expr,
    Has,
    Ident,
    Index,
    Literal,
    Operator,
    Select,
    children,
    parse,
)

# A projection: None keeps everything below; a dict keeps only the named children.
Projection = dict[str, "Projection | None"] | None

PROJECTED_VARIABLES = ("object", "oldObject", "namespaceObject", "request")


class Presence(tuple[str, ...]):
    """A path only tested with ``has()``: its key must exist, its subtree is not needed."""

    __slots__ = ()


ELEMENTS = "[]"  # a path segment meaning "each element of this list"

# Where a value comes from: (root variable, path below it), or None for a computed value.
_Origin = tuple[str, tuple[str, ...]] | None


def selected_paths(source: str) -> dict[str, list[tuple[str, ...]]]:
    """Every field path each projected variable is selected along in ``source``.

    A comprehension over a selected list (``object.spec.rules.all(r, r.host != '')``)
    selects, for each element, only the fields its variable selects (``rules[].host``).
    """
    return paths_of(parse(source))


def paths_of(tree: Expr) -> dict[str, list[tuple[str, ...]]]:
    """:func:`selected_paths` of a parsed expression."""
    finder = _PathFinder()
    finder.consume(tree, {})
    return finder.found


class _PathFinder:
    """Follows values back to the variable paths they come from, recording each use.

    ``value`` says where a node's value comes from without counting it as read; its caller
    decides how much of that value is needed: all of it (``consume``), only whether the key
    exists (``has()``, a null test: a :class:`Presence`), or only its size or keys.
    """

    def __init__(self) -> None:
        self.found: dict[str, list[tuple[str, ...]]] = {}

    def use(self, origin: _Origin, presence: bool = False) -> None:
        if origin is not None:
            root, path = origin
            self.found.setdefault(root, []).append(Presence(path) if presence else path)

    def consume(self, node: Expr, scope: dict[str, _Origin]) -> None:
        self.use(self.value(node, scope))

    def value(self, node: Expr, scope: dict[str, _Origin]) -> _Origin:
        if isinstance(node, Ident):
            if node.name in scope:
                return scope[node.name]
            return (node.name, ()) if node.name in PROJECTED_VARIABLES else None
        if isinstance(node, Select):
            return _below(self.value(node.operand, scope), node.field)
        if isinstance(node, Index):
            operand = self.value(node.operand, scope)
            self.consume(node.index, scope)
            # A literal key selects one entry of a map; any other index keeps every element
            # (on a map, an ELEMENTS projection keeps all of it).
            key = literal_key(node.index)
            return _below(operand, key if key is not None and key != ELEMENTS else ELEMENTS)
        if isinstance(node, Has):
            self.use(_below(self.value(node.target.operand, scope), node.target.field), True)
            return None
        if isinstance(node, Comprehension):
            return self.comprehension(node, scope)
        if isinstance(node, Call) and node.function == "size" and len(children(node)) == 1:
            # The size of a list needs its length, not its elements' fields (a variable's
            # own size is a map's: kept whole either way).
            sized = self.value(children(node)[0], scope)
            if sized is not None and sized[1]:
                self.use(_below(sized, ELEMENTS), True)
            else:
                self.use(sized)
            return None
        if isinstance(node, Operator) and node.op in ("_==_", "_!=_"):
            left, right = node.args
            for one, other in ((left, right), (right, left)):
                if isinstance(other, Literal) and other.kind == "null":
                    self.use(self.value(one, scope), True)
                    return None
        if isinstance(node, Operator) and node.op == "@in":
            key = literal_key(node.args[0])
            if key is not None and key != ELEMENTS:
                # `'k' in m` needs only entry k of a map (a list is kept whole).
                self.use(_below(self.value(node.args[1], scope), key), True)
                return None
        for child in children(node):
            self.consume(child, scope)
        return None

    def comprehension(self, node: Comprehension, scope: dict[str, _Origin]) -> _Origin:
        source = self.value(node.range, scope)
        elements = _below(source, ELEMENTS)
        # The list keeps its length (and a map its keys) even if no element field is read.
        self.use(elements, True)
        inner = {**scope, node.variable: elements}
        for part in node.body:
            self.consume(part, inner)
        # `filter` yields some of the same elements: what reads its result reads them.
        return source if node.macro == "filter" else None


def _below(origin: _Origin, segment: str) -> _Origin:
    if origin is None:
        return None
    return origin[0], (*origin[1], segment)


def merge(paths: Iterable[tuple[str, ...]]) -> Projection:
    """A projection tree keeping every path's subtree; an empty path keeps everything."""
    tree: dict[str, Any] = {}
    # Full paths first, so a presence test never narrows a subtree another path keeps whole.
    ordered = sorted(paths, key=lambda path: isinstance(path, Presence))
    for path in ordered:
        if not path:
            if isinstance(path, Presence):
                continue  # `object != null`: the variable itself, none of its fields
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
