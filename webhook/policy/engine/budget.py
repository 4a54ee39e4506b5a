"""Bounding what one admission may cost before CEL runs it.

CEL runs in the request's thread and holds the GIL: an evaluation that takes seconds blocks
every other admission and /healthz with it. The load-time estimate (checks/cost.py,
Kubernetes' units) bounds a policy for inputs of the sizes it assumes; an input larger than
that (a list over 100 items) is costed again here, with the input's real sizes, before the
policy runs, in microseconds of the runtime that evaluates it (webhook/policy/cel/runtime,
closures over the admission object as it is). That runtime converts nothing and builds the
results of ``map``/``filter`` and of list concatenation by appending, so every price is per
node, per comprehension step, per element scanned or per call: linear in the input. Each
price is about 1.5 times what benchmarks/budget_prices.py measures (the margin: a busier
machine, a slower one, Python's allocator under a large input), and both sides of `&&`
and `||` are counted even when one is skipped. Only CEL is priced: what a block does with
CEL's result (unique-ingress-hosts parsing each key) is not. Over the budget, the policy
does not run and fails as its failurePolicy says. Sizes, not clocks, decide, so
admission, ``check``, ``audit`` and the suites agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.policy.blocks.protocol import Slot
from webhook.policy.blocks.registry import slots
from webhook.policy.cel.checks.cost import DEFAULT_LIST_ITEMS, DEFAULT_MAP_ENTRIES
from webhook.policy.cel.expression import EXTENSION_FUNCTIONS
from webhook.policy.cel.projection import ELEMENTS, selected_paths
from webhook.policy.cel.syntax import (
    Call,
    Comprehension,
    Expr,
    Ident,
    Index,
    ListExpr,
    Literal,
    MapExpr,
    Operator,
    Select,
    children,
    parse,
    walk,
)
from webhook.policy.model.policy import Policy

# Microseconds of the closure runtime on this 2-core machine, shared with other work as it
# was measured: about 1.5 times the figures of benchmarks/budget_prices.py (the margin), and
# every node of a short-circuited `&&`/`||` counted as if it ran (docs/policies.md "Cost").
# The default budget keeps any admission's CEL work near 50 ms, so /healthz waits at most
# about that.
DEFAULT_BUDGET = 50_000
ITERATE = 0.1  # one comprehension step (binding its variable, appending a map's result)
SCAN = 0.09  # comparing one element of a list scanned by `in` (CEL equality, not ==)
LOOKUP = 0.2  # `in` on a map (a set built by sets.of): one hash lookup
CALLBACK = 1.25  # calling an extension function (arguments checked, result wrapped)
CALLBACK_ELEMENT = 0.3  # per element of a list argument of a size-dependent call
JOIN_ELEMENT = 0.02  # ... but join only appends a string it is given (no hashing)
LITERAL = 0.05  # a literal: its closure returns a constant
NODE = 0.18  # any other node evaluated

# Calls whose work grows with the size of a list argument (besides comprehensions and `in`).
_SIZE_DEPENDENT_CALLS = frozenset(
    {"sets.contains", "sets.equivalent", "sets.intersects", "sets.of", "flatten", "sort"}
    | {"distinct", "join", "sum", "min", "max", "math.greatest", "math.least", "reverse"}
)
# Calls whose result is a map (an `in` on it is a lookup, not a scan).
_MAP_RESULTS = frozenset({"sets.of"})
_ROOTS = ("object", "oldObject", "namespaceObject", "request")

Path = tuple[str, ...]
Where = tuple[str, Path]  # (root, field path); a path may hold ELEMENTS
# segment -> what follows it (a path's fields as nested maps; ELEMENTS for a list's items)
_Trie = dict[str, "_Trie"]


@dataclass(frozen=True, slots=True)
class Oversize:
    """The largest list or map an input holds beyond what the load-time estimate assumed."""

    where: str
    size: int


@dataclass(frozen=True, slots=True)
class Guard:
    """The size check and runtime cost of one policy.

    ``trees`` are what the policy evaluates up front; messageExpressions are evaluated only
    for a violation, so they are costed apart (``message_cost``) and, over the budget, the
    plain message is used instead, as Kubernetes falls back when a messageExpression fails.
    """

    trees: tuple[tuple[Expr, str | None], ...]  # every expression, and the variable it defines
    paths: tuple[Where, ...]  # what its work grows with
    messages: tuple[Expr, ...] = ()  # the messageExpressions
    message_of: tuple[int, ...] = ()  # the index of the validation each of them belongs to

    # The paths as one tree per root, walked once per admission: every request pays for
    # this check, and the paths of one policy share most of their prefixes.
    walk: Mapping[str, _Trie] = field(default_factory=dict)

    def oversize(self, values: Mapping[str, Any]) -> Oversize | None:
        """The largest collection along the guarded paths above the assumed sizes, if any."""
        worst: Oversize | None = None
        for root, trie in self.walk.items():
            found = _largest(values.get(root), trie, root)
            if found is not None:
                worst = _larger(worst, found)
        return worst

    def cost(self, values: Mapping[str, Any], limit: float = float("inf")) -> float:
        """Microseconds this policy would cost the runtime on this input; once over
        ``limit`` it stops counting (the verdict is known). Costing reads sizes along the
        guarded paths and walks the expression trees: nothing here grows with the input
        faster than the walk of ``oversize`` did."""
        model = _Model(_Sizes(values))
        total = 0.0
        for tree, variable in self.trees:
            total += model.cost(tree)
            if total > limit:
                return total
            if variable is not None:
                model.variables[variable] = model.shape(tree)
        return total

    def message_cost(self, validation: int, values: Mapping[str, Any]) -> float:
        """Microseconds validation ``validation``'s messageExpression would cost."""
        if validation not in self.message_of:
            return 0.0
        model = _Model(_Sizes(values))
        for tree, variable in self.trees:
            if variable is not None:
                model.variables[variable] = model.shape(tree)
        return model.cost(self.messages[self.message_of.index(validation)])


@dataclass(frozen=True, slots=True)
class _Shape:
    """What is known of a value: how many elements it has, and whether it is a map."""

    size: float
    is_map: bool = False


def build_guards(policies: Iterable[Policy]) -> dict[str, Guard]:
    """A guard for every policy whose work past its matchConditions grows with the size of
    its input."""
    return _guards(policies, conditions=False)


def build_condition_guards(policies: Iterable[Policy]) -> dict[str, Guard]:
    """A guard for every policy whose matchConditions' work grows with the size of its
    input. They are costed apart, first: a policy whose conditions leave it out must not
    fail for what its validations would have cost."""
    return _guards(policies, conditions=True)


def _guards(policies: Iterable[Policy], *, conditions: bool) -> dict[str, Guard]:
    guards: dict[str, Guard] = {}
    for policy in policies:
        found = [(slot, slot.expression.syntax or parse(slot.expression.source))
                 for slot in slots(policy) if _is_condition(slot.path) == conditions]
        guard = _guard(found)
        if guard is not None:
            guards[policy.name] = guard
    return guards


def _guard(found: list[tuple[Slot, Expr]]) -> Guard | None:
    growing = [slot.expression for slot, tree in found if _grows(tree)]
    if not growing:
        return None
    paths = sorted({
        (root, tuple(path))
        for expression in growing
        for root, selected in selected_paths(
            expression.analysed_source or expression.source).items()
        if root in _ROOTS
        for path in selected
        if path
    })
    up_front = tuple((tree, slot.variable) for slot, tree in found
                     if not _is_message(slot.path))
    messages = [(slot.path[2], tree) for slot, tree in found if _is_message(slot.path)]
    return Guard(
        up_front, tuple(paths), tuple(tree for _, tree in messages),
        tuple(int(index) for index, _ in messages), _tries(paths),
    )


def _tries(paths: Iterable[Where]) -> dict[str, _Trie]:
    tries: dict[str, _Trie] = {}
    for root, path in paths:
        node = tries.setdefault(root, {})
        for segment in path:
            node = node.setdefault(segment, {})
    return tries


def _is_condition(path: tuple[Any, ...]) -> bool:
    return path[1:2] == ("matchConditions",)


def _is_message(path: tuple[Any, ...]) -> bool:
    return path[-1:] == ("messageExpression",)


def _grows(node: Expr) -> bool:
    """Whether the work of ``node`` grows with the size of a collection it reads."""
    for current in walk(node):  # iterative: any tree the bounds let through
        if isinstance(current, Comprehension):
            return True
        if (isinstance(current, Operator) and current.op == "@in"
                and not isinstance(current.args[1], Literal | MapExpr)):
            return True
        if isinstance(current, Call) and current.function in _SIZE_DEPENDENT_CALLS:
            return True
    return False


def _largest(value: Any, trie: _Trie, where: str) -> Oversize | None:
    """The largest list (or map iterated with ``[]``) along the paths of ``trie`` over the
    assumption."""
    worst: Oversize | None = None
    # Places are (parent place, segment) links, spelled out only for what is found: most
    # inputs are within the assumptions, and every request walks this.
    pending: list[tuple[Any, _Trie, _Place]] = [(value, trie, (None, where))]
    while pending:
        current, node, place = pending.pop()
        kind = type(current)
        if kind is list and len(current) > DEFAULT_LIST_ITEMS:
            worst = _larger(worst, Oversize(_spelled(place), len(current)))
            continue  # over the assumption already; its elements need not be walked
        for segment, rest in node.items():
            if segment == ELEMENTS:
                if kind is dict and len(current) > DEFAULT_MAP_ENTRIES:
                    worst = _larger(worst, Oversize(_spelled(place), len(current)))
                    continue
                if kind is list:
                    inside = (place, "[]")
                    pending.extend((item, rest, inside) for item in current)
            elif (kind is dict or isinstance(current, Mapping)) and segment in current:
                pending.append((current[segment], rest, (place, "." + segment)))
    return worst


_Place = tuple[Any, str]  # (parent place or None, segment as written)


def _spelled(place: _Place) -> str:
    parts: list[str] = []
    link: Any = place
    while link is not None:
        link, segment = link
        parts.append(segment)
    return "".join(reversed(parts))


def merged_walk(guards: Iterable[Guard]) -> dict[str, _Trie]:
    """The paths of all ``guards`` as one tree per root (what one kind's policies read)."""
    merged: dict[str, _Trie] = {}
    for guard in guards:
        for root, trie in guard.walk.items():
            _merge_trie(merged.setdefault(root, {}), trie)
    return merged


def _merge_trie(into: _Trie, trie: _Trie) -> None:
    for segment, rest in trie.items():
        _merge_trie(into.setdefault(segment, {}), rest)


# A trie laid out for the per-request walk: (fields, elements). ``fields`` holds
# (segment, what follows or None at a leaf); ``elements`` is what follows ``[]`` (_LEAF when
# nothing does, None when the trie has no ``[]`` there).
SizeWalk = tuple[tuple[tuple[str, "SizeWalk | None"], ...], "SizeWalk | None"]
_LEAF: SizeWalk = ((), None)


def size_walk(trie: _Trie) -> SizeWalk:
    """``trie`` (a root's part of merged_walk) in the layout ``fits`` walks."""
    fields = tuple((segment, size_walk(rest) if rest else None)
                   for segment, rest in trie.items() if segment != ELEMENTS)
    if ELEMENTS not in trie:
        return fields, None
    rest = trie[ELEMENTS]
    return fields, size_walk(rest) if rest else _LEAF


def fits(values: Mapping[str, Any], walks: Mapping[str, SizeWalk]) -> bool:
    """Whether nothing along ``walks`` (size_walk of each root of merged_walk over one kind's
    guards) is larger than the load-time estimates assume: then no guard of that kind finds
    anything oversize, and one walk per request spares each policy its own."""
    for root, rooted in walks.items():
        pending: list[tuple[Any, SizeWalk]] = [(values.get(root), rooted)]
        while pending:
            current, (fields, elements) = pending.pop()
            kind = type(current)
            if kind is list:
                if len(current) > DEFAULT_LIST_ITEMS:
                    return False
                if elements is _LEAF:
                    for item in current:
                        if type(item) is list and len(item) > DEFAULT_LIST_ITEMS:
                            return False
                elif elements is not None:
                    pending.extend((item, elements) for item in current)
                continue  # a list has no fields
            if kind is dict:
                if elements is not None and len(current) > DEFAULT_MAP_ENTRIES:
                    return False
            elif not fields or not isinstance(current, Mapping):
                continue
            for segment, rest in fields:
                if segment in current:
                    child = current[segment]
                    if rest is not None:
                        pending.append((child, rest))
                    elif type(child) is list and len(child) > DEFAULT_LIST_ITEMS:
                        return False
    return True


# The roots an AdmissionReview's body holds (what its facts speak of: context.py).
BODY_ROOTS = frozenset({"object", "oldObject", "request"})


@dataclass(frozen=True, slots=True)
class SizeCheck:
    """``fits`` over one kind's walks as one generated function: the walk written out as
    nested loops (no stack of pending pairs), as the CEL of codegen.py is. ``roots`` are the
    values it reads."""

    roots: tuple[str, ...]
    fits: Callable[[Mapping[str, Any]], bool]


def size_check(walks: Mapping[str, SizeWalk]) -> SizeCheck:
    """The check of ``walks`` (size_walk of each root); ``fits`` itself when the walk is
    nested deeper than Python's blocks allow."""
    lines = ["def fits(values):"]
    counter = iter(range(1_000_000))
    for root, rooted in walks.items():
        name = f"v{next(counter)}"
        lines.append(f"    {name} = values.get({root!r})")
        _write_walk(lines, name, rooted, 1, counter)
    lines.append("    return True")
    namespace: dict[str, Any] = {"Mapping": Mapping}
    try:
        exec(compile("\n".join(lines) + "\n", "<size check>", "exec"), namespace)
    except (SyntaxError, RecursionError, MemoryError):
        return SizeCheck(tuple(walks), lambda values: fits(values, walks))
    return SizeCheck(tuple(walks), namespace["fits"])


def _write_walk(lines: list[str], value: str, walk: SizeWalk, depth: int,
                counter: Iterator[int]) -> None:
    """The statements ``fits`` runs for ``value`` along ``walk``, in the same order of
    tests (segments and roots are written with repr(): no policy text is Python text)."""
    fields, elements = walk
    pad = "    " * depth
    kind = f"t{next(counter)}"
    lines.append(f"{pad}{kind} = type({value})")
    lines.append(f"{pad}if {kind} is list:")
    lines.append(f"{pad}    if len({value}) > {DEFAULT_LIST_ITEMS}:")
    lines.append(f"{pad}        return False")
    if elements is _LEAF:
        item = f"i{next(counter)}"
        lines.append(f"{pad}    for {item} in {value}:")
        lines.append(f"{pad}        if type({item}) is list and len({item}) > "
                     f"{DEFAULT_LIST_ITEMS}:")
        lines.append(f"{pad}            return False")
    elif elements is not None:
        item = f"i{next(counter)}"
        lines.append(f"{pad}    for {item} in {value}:")
        _write_walk(lines, item, elements, depth + 2, counter)
    if not fields:
        if elements is not None:
            lines.append(f"{pad}elif {kind} is dict and len({value}) > {DEFAULT_MAP_ENTRIES}:")
            lines.append(f"{pad}    return False")
        return
    lines.append(f"{pad}elif {kind} is dict or isinstance({value}, Mapping):")
    if elements is not None:
        lines.append(f"{pad}    if {kind} is dict and len({value}) > {DEFAULT_MAP_ENTRIES}:")
        lines.append(f"{pad}        return False")
    for segment, rest in fields:
        child = f"c{next(counter)}"
        lines.append(f"{pad}    if {segment!r} in {value}:")
        lines.append(f"{pad}        {child} = {value}[{segment!r}]")
        if rest is not None:
            _write_walk(lines, child, rest, depth + 2, counter)
        else:
            lines.append(f"{pad}        if type({child}) is list and len({child}) > "
                         f"{DEFAULT_LIST_ITEMS}:")
            lines.append(f"{pad}            return False")


def _larger(worst: Oversize | None, found: Oversize) -> Oversize:
    """The larger of two; of two as large, the one whose place sorts first (the message
    must not depend on the order of the walk)."""
    if worst is None or (found.size, worst.where) > (worst.size, found.where):
        return found
    return worst


class _Sizes:
    """Sizes read from the input along a path (the largest over a list's elements)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values
        self._largest: dict[Where, float] = {}
        self._elements: dict[Where, float] = {}

    def largest(self, where: Where) -> float:
        if where not in self._largest:
            self._measure(where)
        return self._largest[where]

    def elements(self, where: Where) -> float:
        """How many values ``where`` reaches in all (what flattening it yields)."""
        if where not in self._elements:
            self._measure(where)
        return self._elements[where]

    def _measure(self, where: Where) -> None:
        root, path = where
        largest = 0
        count = 0
        level = [self.values.get(root)]
        for segment in path:
            following: list[Any] = []
            for value in level:
                if segment == ELEMENTS:
                    if isinstance(value, list | Mapping):
                        following.extend(value)
                elif isinstance(value, Mapping) and value.get(segment) is not None:
                    following.append(value[segment])
            level = following
        for value in level:
            if isinstance(value, str | list | Mapping):
                largest = max(largest, len(value))
                count += len(value) if isinstance(value, list | Mapping) else 1
            else:
                count += 1
        self._largest[where] = float(largest)
        self._elements[where] = float(max(count, len(level)))


class _Model:
    """The runtime's cost of an expression tree, with sizes read from the input."""

    def __init__(self, sizes: _Sizes) -> None:
        self.sizes = sizes
        self.variables: dict[str, _Shape] = {}  # policy variable -> its value's shape
        self.bound: dict[str, Where | None] = {}  # comprehension variable -> its path

    def cost(self, node: Expr) -> float:
        if isinstance(node, Comprehension):
            return self._comprehension(node)
        if isinstance(node, Literal):
            return LITERAL
        own = NODE
        if isinstance(node, Operator) and node.op == "@in":
            container = self.shape(node.args[1])
            own += LOOKUP if container.is_map else SCAN * container.size
        elif isinstance(node, Call) and node.function in EXTENSION_FUNCTIONS:
            own += CALLBACK
            if node.function in _SIZE_DEPENDENT_CALLS:
                arguments = [*node.args, *([node.target] if node.target is not None else [])]
                price = JOIN_ELEMENT if node.function == "join" else CALLBACK_ELEMENT
                own += price * sum(self.shape(arg).size for arg in arguments)
        if isinstance(node, Operator) and node.op == "_?_:_":
            # Only one branch runs: the dearer one (the keys of unique-ingress-hosts hold an
            # Ingress branch and a Gateway route branch, and an object takes one).
            condition, then, otherwise = node.args
            return own + self.cost(condition) + max(self.cost(then), self.cost(otherwise))
        for child in children(node):  # a loop, not a generator: one frame less per level
            own += self.cost(child)
        return own

    def _comprehension(self, node: Comprehension) -> float:
        items = self.shape(node.range).size
        ranged = self._path(node.range)
        had = node.variable in self.bound
        saved = self.bound.get(node.variable)
        self.bound[node.variable] = (ranged[0], (*ranged[1], ELEMENTS)) if ranged else None
        try:
            body = sum(self.cost(part) for part in node.body)
        finally:
            if had:
                self.bound[node.variable] = saved
            else:
                del self.bound[node.variable]
        # map and filter append to one list: their result costs nothing past the step.
        return self.cost(node.range) + items * (ITERATE + body)

    def shape(self, node: Expr) -> _Shape:
        """How large a value ``node`` gives, at most."""
        where = self._path(node)
        if where is not None:
            return _Shape(self.sizes.largest(where))
        if isinstance(node, Select) and _is_variables(node.operand):
            return self.variables.get(node.field, _Shape(DEFAULT_LIST_ITEMS))
        if isinstance(node, Comprehension) and node.macro in ("map", "filter"):
            return _Shape(self.shape(node.range).size)
        if isinstance(node, Call):
            if node.function in _MAP_RESULTS and node.args:
                return _Shape(self.shape(node.args[0]).size, is_map=True)
            if node.function == "flatten":
                inner = node.target if node.target is not None else node.args[0]
                return _Shape(self._flattened(inner))
        if isinstance(node, Operator) and node.op == "_?_:_":
            first, second = self.shape(node.args[1]), self.shape(node.args[2])
            return first if first.size >= second.size else second
        if isinstance(node, Operator) and node.op == "_+_":
            total = 0.0
            for arg in node.args:  # a loop: a long `+` chain recurses here
                total += self.shape(arg).size
            return _Shape(total)
        if isinstance(node, MapExpr):
            return _Shape(len(node.entries), is_map=True)
        if isinstance(node, Literal) and isinstance(node.value, str):
            return _Shape(len(node.value))
        if isinstance(node, ListExpr):
            return _Shape(len(node.items))
        return _Shape(1)

    def _flattened(self, node: Expr) -> float:
        # flatten(list.map(x, x.items)): every element of every inner list.
        if isinstance(node, Comprehension) and node.macro == "map" and node.body:
            ranged = self._path(node.range)
            if ranged is not None:
                self.bound[node.variable] = (ranged[0], (*ranged[1], ELEMENTS))
                try:
                    inner = self._path(node.body[-1])
                finally:
                    del self.bound[node.variable]
                if inner is not None:
                    return self.sizes.elements(inner)
        return self.shape(node).size * DEFAULT_LIST_ITEMS

    def _path(self, node: Expr) -> Where | None:
        """The input path ``node`` reads, or None when it is computed."""
        if isinstance(node, Ident):
            if node.name in self.bound:
                return self.bound[node.name]
            return (node.name, ()) if node.name in _ROOTS else None
        if isinstance(node, Select):
            parent = self._path(node.operand)
            return (parent[0], (*parent[1], node.field)) if parent is not None else None
        if (isinstance(node, Index) and isinstance(node.index, Literal)
                and isinstance(node.index.value, str)):
            parent = self._path(node.operand)
            return (parent[0], (*parent[1], node.index.value)) if parent is not None else None
        if isinstance(node, Comprehension) and node.macro == "filter":
            return self._path(node.range)  # the same elements, fewer of them
        return None


def _is_variables(node: Expr) -> bool:
    return isinstance(node, Ident) and node.name == "variables"

