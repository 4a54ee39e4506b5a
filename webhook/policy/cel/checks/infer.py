"""Type inference over the syntax tree, reporting what would fail on every request.

In the spirit of cel-go's checker, which Kubernetes runs against a kind's schema: each
node gets a type, from the schema for the admission variables, from the function table
for calls. Unlike cel-go, anything unknown is ``dyn`` and accepted, so a finding is always
something that cannot work: a field the kind lacks, a function we do not provide, a field
selected on a list, a string function on a number.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from webhook.policy.cel.checks.functions import FUNCTIONS, Function, accepts, matching
from webhook.policy.cel.checks.literals import format_problem, literal_problem
from webhook.policy.cel.checks.types import (
    BOOL,
    DOUBLE,
    DYN,
    INT,
    STRING,
    TYPE,
    CelType,
    field_names,
    field_type,
    join,
    list_of,
    map_of,
)
from webhook.policy.cel.expression import TYPE_NAMES
from webhook.policy.cel.references import POLICY_VARIABLES, literal_key
from webhook.policy.cel.syntax import (
    Call,
    Comprehension,
    Expr,
    Has,
    Ident,
    Index,
    ListExpr,
    Literal,
    MapExpr,
    Operator,
    Select,
    Span,
    StructExpr,
    walk,
)

_LITERALS = {
    "int": INT,
    "uint": CelType("uint"),
    "double": DOUBLE,
    "string": STRING,
    "bytes": CelType("bytes"),
    "bool": BOOL,
    "null": CelType("null"),
}
_ITERABLE = ("list", "map", "object", "dyn")


@dataclass(frozen=True, slots=True)
class Finding:
    message: str
    span: Span
    warning: bool = False  # reported, the policy still loads


_NUMERIC = frozenset({"int", "uint", "double"})
_ORDERED = frozenset({"string", "bytes", "bool", "timestamp", "duration"})
_SYMBOLS = {"_==_": "==", "_!=_": "!=", "_<_": "<", "_<=_": "<=", "_>_": ">", "_>=_": ">=",
            "_+_": "+", "_-_": "-", "_*_": "*", "_/_": "/", "_%_": "%", "@in": "in"}


def cel_name(kind: CelType) -> str:
    """A type as cel-go prints it in its messages: ``int``, ``list(string)``."""
    name = {"object": "map", "null": "null_type", "optional": "optional_type"}.get(
        kind.kind, kind.kind)
    if kind.kind in ("list", "optional") and kind.element is not None:
        return f"{name}({cel_name(kind.element)})"
    if kind.kind == "map":
        return f"map(string, {cel_name(kind.element or DYN)})"
    return name


def same_type(first: CelType, second: CelType) -> bool:
    """Whether cel-go's checker lets ``first == second`` through (dyn and null always)."""
    if not first.known or not second.known or "null" in (first.kind, second.kind):
        return True
    kinds = {"map" if k.kind == "object" else k.kind for k in (first, second)}
    if len(kinds) > 1:
        return False
    if first.kind in ("list", "map", "optional") and first.element and second.element:
        return same_type(first.element, second.element)
    return True


class TypeChecker:
    """Infers types under ``roots`` (admission variables) and ``variables`` (the policy's)."""

    def __init__(
        self,
        roots: Mapping[str, CelType],
        variables: Mapping[str, CelType],
        kind: str | None = None,
        guards: set[tuple[Path, str]] | None = None,
    ) -> None:
        self.roots = roots
        self.variables = variables
        # The kind ``object`` is (a policy over several kinds is checked once per kind):
        # ``object.kind == 'K' ? a : b`` then checks only the branch that kind takes.
        self.kind = kind
        self.findings: list[Finding] = []
        self.policy_guards = guards or set()
        self.guards: set[tuple[Path, str]] = set()
        self.exempt: set[int] = set()  # list literals whose elements may mix types

    def check(self, tree: Expr) -> CelType:
        self.guards = guards(tree) | self.policy_guards
        return self.infer(tree, {})

    def unguarded(self, container: Expr, parent: CelType, key: str, node: Expr) -> None:
        """A key read from an optional map of the object (labels, annotations...) that no
        ``has()`` or ``in`` in the expression tests first: it fails at run time on every
        object without that key, which failurePolicy Fail turns into a denial."""
        path = _path(container)
        if path is None or (path, key) in self.guards or path[0] not in _ROOTS:
            return
        where = f"{parent.root} {parent.where}".strip()
        self.report(f"reads {where}[{key!r}] without testing it first: an object without "
                    f"it fails this expression (guard it with has(), `in`, or read it as "
                    f"{'.'.join(path)}[?{key!r}].orValue(...))", node, warning=True)

    def report(self, message: str, node: Expr, *, warning: bool = False) -> None:
        finding = Finding(message, node.span, warning)
        if finding not in self.findings:
            self.findings.append(finding)

    def mixed(self, kinds: list[CelType], node: Expr, what: str) -> None:
        """A list or map literal holds one type in Kubernetes (homogeneous aggregate
        literals): report the first element of another type."""
        if id(node) in self.exempt:
            return
        known = [k for k in kinds if k.known and k.kind != "null"]
        for kind in known[1:]:
            if not same_type(known[0], kind):
                self.report(f"expected type '{cel_name(known[0])}' but found "
                            f"'{cel_name(kind)}': a {what} literal holds values of one type "
                            "(wrap them in dyn() to mix)", node)
                return

    def infer(self, node: Expr, scope: dict[str, CelType]) -> CelType:
        if isinstance(node, Ident):
            if node.name in scope:
                return scope[node.name]
            if node.name in TYPE_NAMES:
                return TYPE
            return self.roots.get(node.name, DYN)
        if isinstance(node, Select):
            return self.select(node, scope)
        if isinstance(node, Has):
            self.select(node.target, scope)
            return BOOL
        if isinstance(node, Index):
            return self.index(node, scope)
        if isinstance(node, Call):
            return self.call(node, scope)
        if isinstance(node, Comprehension):
            return self.comprehension(node, scope)
        if isinstance(node, Operator):
            return self.operator(node, scope)
        if isinstance(node, Literal):
            return _LITERALS[node.kind]
        if isinstance(node, ListExpr):
            element = CelType("null")
            kinds = []
            for item in node.items:
                kinds.append(self.infer(item, scope))
                element = join(element, kinds[-1])
            self.mixed(kinds, node, "list")
            return list_of(DYN if element.kind == "null" else element)
        if isinstance(node, MapExpr):
            value = CelType("null")
            keys, values = [], []
            for key, item in node.entries:
                keys.append(self.infer(key, scope))
                values.append(self.infer(item, scope))
                value = join(value, values[-1])
            self.mixed(keys, node, "map key")
            self.mixed(values, node, "map")
            return map_of(DYN if value.kind == "null" else value)
        assert isinstance(node, StructExpr)
        for _, value_node in node.fields:
            self.infer(value_node, scope)
        self.report(f"message construction ({node.type_name}{{...}}) is not supported", node)
        return DYN

    def select(self, node: Select, scope: dict[str, CelType]) -> CelType:
        operand = node.operand
        policy_variable = isinstance(operand, Ident) and operand.name == POLICY_VARIABLES
        if policy_variable and POLICY_VARIABLES not in scope:
            return self.variables.get(node.field, DYN)
        parent = self.infer(operand, scope)
        return self.member(parent, node.field, node, operand)

    def member(self, parent: CelType, name: str, node: Expr, operand: Expr) -> CelType:
        """The type of ``parent.name`` (or ``parent['name']``), reporting a missing field."""
        if parent.kind == "object":
            found = field_type(parent, name)
            if found is not None:
                if found.kind == "timestamp" and found.where:
                    self.report(f"{_where(found)} is a timestamp in Kubernetes' CEL but a "
                                "string in edgewarden's: no operation on it means the same in "
                                "both (docs/native.md)", node, warning=True)
                return found
            self.report(self.missing_field(parent, name), node)
            return DYN
        if parent.kind in ("map", "dyn"):
            if parent.kind == "map" and parent.where and isinstance(node, Select | Index):
                self.unguarded(operand, parent, name, node)
            return (parent.element or DYN) if parent.kind == "map" else DYN
        if parent.kind in ("list", "string", "int", "bool", "double", "bytes"):
            what = f"{_where(parent)} is a {parent.describe()}"
            hint = ": use a comprehension (all, exists, map...) over it" * (parent.kind == "list")
            self.report(f"{what}, it has no field {name!r}{hint}", node)
        return DYN

    @staticmethod
    def missing_field(parent: CelType, name: str) -> str:
        prefix = f"{parent.where}." if parent.where else ""
        message = f"{parent.root or 'the value'} has no field {prefix}{name}"
        close = difflib.get_close_matches(name, field_names(parent), n=1, cutoff=0.6)
        if close:
            message += f" (did you mean {prefix}{close[0]}?)"
        return message

    def index(self, node: Index, scope: dict[str, CelType]) -> CelType:
        parent = self.infer(node.operand, scope)
        index = self.infer(node.index, scope)
        if parent.kind == "pair" and isinstance(node.index, Literal) and node.index.value in (0, 1):
            # ``_p[0]`` is the index (int) or key (string), ``_p[1]`` the value.
            return CelType(parent.root) if node.index.value == 0 else (parent.element or DYN)
        key = literal_key(node.index)
        if parent.kind == "object" and key is not None:
            return self.member(parent, key, node, node.operand)
        if parent.kind == "map" and parent.where and key is not None:
            self.unguarded(node.operand, parent, key, node)
        if parent.kind in ("list", "map"):
            if parent.kind == "list" and index.kind in ("string", "bool"):
                what = _where(parent)
                self.report(f"{what} is a list: index it with an int, not a {index.kind}", node)
            return parent.element or DYN
        return DYN

    def call(self, node: Call, scope: dict[str, CelType]) -> CelType:
        if node.function == "format" and node.args and isinstance(node.args[0], ListExpr):
            self.exempt.add(id(node.args[0]))  # cel-go exempts format's argument list
        target = self.infer(node.target, scope) if node.target is not None else None
        args = []  # a loop, not a comprehension: one frame less per level
        for arg in node.args:
            args.append(self.infer(arg, scope))
        function = FUNCTIONS.get(node.function)
        method = node.target is not None
        if function is None:
            self.report(self.unknown_function(node.function, method), node)
            return DYN
        problem = literal_problem(node)
        if problem is None and node.function == "format" and node.args \
                and isinstance(node.args[0], ListExpr):
            kinds = [kind.kind if kind.known else None
                     for kind in (self.infer(item, scope) for item in node.args[0].items)]
            problem = format_problem(node, kinds)
        if problem is not None:
            self.report(problem, node)
        if not function.kubernetes:
            self.report(f"{node.function}() is edgewarden's own, not Kubernetes CEL: this "
                        "policy runs on the webhook only (docs/native.md)", node, warning=True)
        if node.function in ("_optional_select", "_optional_index"):
            return self.optional_read(node, args)
        if node.function == "_pairs" and args:
            # A two-variable comprehension's [index or key, value] pairs (optional_syntax.py)
            ranged = args[0]
            key = INT if ranged.kind == "list" else STRING if ranged.kind in ("map", "object") \
                else DYN
            return list_of(CelType("pair", _element(ranged) if ranged.kind == "list" else (
                ranged.element or DYN) if ranged.kind == "map" else DYN, root=key.kind))
        if function.overloads:
            found = matching(function, target, args)
            if found is None:
                self.report(self.no_overload(function, target, args), node)
                return DYN
            return found.result(target, args)
        if not accepts(function, method=method, count=len(args)):
            self.report(self.misused_function(node.function, method, len(args)), node)
            return DYN
        subject = target if target is not None else (args[0] if args else None)
        receiver = function.receiver
        if receiver is not None and subject is not None and subject.kind not in ("dyn", receiver):
            self.report(
                f"{node.function}() works on a {receiver}, "
                f"but {_where(subject)} is a {subject.describe()}"
                + (": use `x in list`" if node.function == "contains" else ""),
                node,
            )
        return function.result(target, args)

    def optional_read(self, node: Call, args: list[CelType]) -> CelType:
        """``a.?f`` / ``a[?k]`` (rewritten as calls): an optional of what the plain read
        would yield, on ``a`` or on the value of an optional ``a``."""
        operand = args[0] if args else DYN
        if operand.kind == "optional":
            operand = operand.element or DYN
        if node.function == "_optional_select":
            key = literal_key(node.args[1]) if len(node.args) > 1 else None
            read = self.member(operand, key, node, node.args[0]) if key is not None else DYN
        elif operand.kind in ("list", "map"):
            read = operand.element or DYN
        else:
            read = DYN
        return CelType("optional", read)

    @staticmethod
    def no_overload(function: Function, target: CelType | None, args: list[CelType]) -> str:
        """cel-go's words, and how the function is called when the call style is wrong."""
        applied = ", ".join(cel_name(a) for a in args)
        shown = f"{cel_name(target)}.({applied})" if target is not None else f"({applied})"
        message = f"found no matching overload for '{function.name}' applied to '{shown}'"
        forms = sorted({
            (f"x.{function.name}({', '.join(o.args)})" if o.target is not None
             else f"{function.name}({', '.join(o.args)})")
            + (f" on a {o.target}" if o.target not in (None, "dyn") else "")
            for o in function.overloads})
        return message + " (declared: " + "; ".join(forms[:4]) + ")"

    @staticmethod
    def unknown_function(name: str, method: bool) -> str:
        spelled = f"x.{name}()" if method else f"{name}()"
        message = f"unknown function {spelled}"
        close = difflib.get_close_matches(name, list(FUNCTIONS), n=1, cutoff=0.6)
        if close:
            message += f" (did you mean {close[0]}?)"
        return message + " (edgewarden's CEL functions: docs/policies.md)"

    @staticmethod
    def misused_function(name: str, method: bool, count: int) -> str:
        function = FUNCTIONS[name]
        styles = [s for s, ok in (("x.f()", function.method), ("f(x)", function.call)) if ok]
        spelled = f"x.{name}()" if method else f"{name}()"
        return (
            f"{spelled} with {count} argument(s) is not provided "
            f"(call it as {' or '.join(s.replace('f', name) for s in styles)})"
        )

    def comprehension(self, node: Comprehension, scope: dict[str, CelType]) -> CelType:
        ranged = self.infer(node.range, scope)
        if ranged.kind not in _ITERABLE:
            what = _where(ranged)
            self.report(f"{node.macro}() needs a list or map, {what} is a {ranged.kind}", node)
        element = _element(ranged)
        inner = {**scope, node.variable: element}
        results = []  # a loop, not a comprehension: one frame less per level
        for part in node.body:
            results.append(self.infer(part, inner))
        for predicate in results[:-1] if node.macro == "map" else results:
            if predicate.known and predicate.kind != "bool":
                self.report(f"the condition of {node.macro}() yields {predicate.describe()}", node)
        if node.macro == "map":
            return list_of(results[-1])
        if node.macro == "filter":
            return ranged if ranged.kind == "list" else list_of(element)
        return BOOL

    @staticmethod
    def member_type_fits(item: CelType, container: CelType) -> bool:
        """``item in container``: a list's element type, a schema map's (string) key."""
        if container.kind == "list":
            return same_type(item, container.element or DYN)
        if container.kind == "object" or (container.kind == "map" and container.where):
            return same_type(item, STRING)
        return True

    def no_operator(self, node: Operator, args: list[CelType]) -> None:
        applied = ", ".join(cel_name(a) for a in args)
        self.report(f"found no matching overload for '{node.op}' applied to '({applied})' "
                    f"(`{_SYMBOLS.get(node.op, node.op)}` between these types is not CEL)", node)

    def kind_test(self, node: Expr) -> bool | None:
        """Whether ``node`` (``object.kind == 'K'``, or ``!=``) holds for the kind checked;
        None when it is no such test or no kind is known."""
        if self.kind is None or not isinstance(node, Operator) or node.op not in (
            "_==_", "_!=_"
        ):
            return None
        literal = next((a for a in node.args if isinstance(a, Literal)), None)
        other = next((a for a in node.args if not isinstance(a, Literal)), None)
        if (
            literal is None
            or literal.kind != "string"
            or not isinstance(other, Select)
            or other.field != "kind"
            or not isinstance(other.operand, Ident)
            or other.operand.name not in ("object", "oldObject")
        ):
            return None
        return bool(literal.value == self.kind) == (node.op == "_==_")

    def operator(self, node: Operator, scope: dict[str, CelType]) -> CelType:
        if node.op == "_?_:_":
            taken = self.kind_test(node.args[0])
            if taken is not None:
                self.infer(node.args[0], scope)
                return self.infer(node.args[1] if taken else node.args[2], scope)
        args = []  # a loop, not a comprehension: one frame less per level
        for arg in node.args:
            args.append(self.infer(arg, scope))
        op = node.op
        if op in ("_&&_", "_||_", "!_"):
            for arg, kind in zip(node.args, args, strict=True):
                if kind.known and kind.kind != "bool":
                    symbol = {"_&&_": "&&", "_||_": "||", "!_": "!"}[op]
                    what = _where(kind)
                    self.report(f"{symbol} needs bools, but {what} is a {kind.describe()}", arg)
            return BOOL
        if op == "@in":
            container = args[1]
            if container.known and container.kind not in ("list", "map", "object"):
                what = _where(container)
                self.report(f"`in` needs a list or map, but {what} is a {container.kind}", node)
            elif not self.member_type_fits(args[0], container):
                self.no_operator(node, args)
            return BOOL
        if op in ("_==_", "_!=_"):
            if not same_type(args[0], args[1]):
                self.no_operator(node, args)
            return BOOL
        if op in ("_<_", "_<=_", "_>_", "_>=_"):
            first, second = args
            if first.known and second.known and not (
                {first.kind, second.kind} <= _NUMERIC
                or (first.kind == second.kind and first.kind in _ORDERED)
            ):
                self.no_operator(node, args)
            return BOOL
        if op == "_?_:_":
            return join(args[1], args[2])
        if op == "-_":
            return args[0]
        first, second = args
        if first.known and second.known and not _arithmetic(op, first.kind, second.kind):
            self.no_operator(node, args)
            return DYN
        if first.kind == second.kind and first.kind in ("int", "uint", "double", "string"):
            return first if op == "_+_" or first.kind != "string" else DYN
        if op == "_+_" and first.kind == second.kind == "list":
            return join(first, second)
        return DYN


_ROOTS = frozenset({"object", "oldObject", "namespaceObject", "request"})
Path = tuple[str, ...]


def _path(node: Expr) -> Path | None:
    """``object.metadata.labels`` as ("object", "metadata", "labels"); None if not a path."""
    parts: list[str] = []
    while True:
        if isinstance(node, Ident):
            return (node.name, *reversed(parts))
        if isinstance(node, Select) and not node.optional:
            parts.append(node.field)
            node = node.operand
        elif isinstance(node, Index) and not node.optional and literal_key(node.index):
            key = literal_key(node.index)
            assert key is not None
            parts.append(key)
            node = node.operand
        else:
            return None


def guards(tree: Expr) -> set[tuple[Path, str]]:
    """The (map, key) pairs the expression tests somewhere: ``has(m.k)``, ``'k' in m``."""
    found: set[tuple[Path, str]] = set()
    for node in walk(tree):
        if isinstance(node, Has):
            path = _path(node.target.operand)
            if path is not None:
                found.add((path, node.target.field))
        elif isinstance(node, Operator) and node.op == "@in":
            key = literal_key(node.args[0])
            path = _path(node.args[1])
            if key is not None and path is not None:
                found.add((path, key))
    return found


def _arithmetic(op: str, first: str, second: str) -> bool:
    """Whether cel-go declares ``first op second`` (no arithmetic across numeric types)."""
    if op == "_+_":
        return (first == second and first in (*_NUMERIC, "string", "bytes", "list", "duration")
                ) or {first, second} == {"timestamp", "duration"}
    if op == "_-_":
        return (first == second and first in (*_NUMERIC, "duration", "timestamp")) or (
            first, second) == ("timestamp", "duration")
    if op == "_%_":
        return first == second and first in ("int", "uint")
    return first == second and first in _NUMERIC


def _where(kind: CelType) -> str:
    """How a message names a value: "Service spec.ports", or "the value"."""
    if kind.where:
        return f"{kind.root} {kind.where}".strip()
    return kind.root or "the value"


def _element(ranged: CelType) -> CelType:
    """What a comprehension variable holds: a list's elements, a map's (string) keys."""
    if ranged.kind == "list":
        return ranged.element or DYN
    if ranged.kind in ("map", "object"):
        return STRING
    return DYN
