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

from webhook.policy.cel.checks.functions import FUNCTIONS, accepts
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


class TypeChecker:
    """Infers types under ``roots`` (admission variables) and ``variables`` (the policy's)."""

    def __init__(
        self,
        roots: Mapping[str, CelType],
        variables: Mapping[str, CelType],
        kind: str | None = None,
    ) -> None:
        self.roots = roots
        self.variables = variables
        # The kind ``object`` is (a policy over several kinds is checked once per kind):
        # ``object.kind == 'K' ? a : b`` then checks only the branch that kind takes.
        self.kind = kind
        self.findings: list[Finding] = []

    def check(self, tree: Expr) -> CelType:
        return self.infer(tree, {})

    def report(self, message: str, node: Expr) -> None:
        finding = Finding(message, node.span)
        if finding not in self.findings:
            self.findings.append(finding)

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
            for item in node.items:
                element = join(element, self.infer(item, scope))
            return list_of(DYN if element.kind == "null" else element)
        if isinstance(node, MapExpr):
            value = CelType("null")
            for key, item in node.entries:
                self.infer(key, scope)
                value = join(value, self.infer(item, scope))
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
                return found
            self.report(self.missing_field(parent, name), node)
            return DYN
        if parent.kind in ("map", "dyn"):
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
        key = literal_key(node.index)
        if parent.kind == "object" and key is not None:
            return self.member(parent, key, node, node.operand)
        if parent.kind in ("list", "map"):
            if parent.kind == "list" and index.kind in ("string", "bool"):
                what = _where(parent)
                self.report(f"{what} is a list: index it with an int, not a {index.kind}", node)
            return parent.element or DYN
        return DYN

    def call(self, node: Call, scope: dict[str, CelType]) -> CelType:
        target = self.infer(node.target, scope) if node.target is not None else None
        args = []  # a loop, not a comprehension: one frame less per level
        for arg in node.args:
            args.append(self.infer(arg, scope))
        function = FUNCTIONS.get(node.function)
        method = node.target is not None
        if function is None:
            self.report(self.unknown_function(node.function, method), node)
            return DYN
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
            return BOOL
        if op in ("_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_"):
            return BOOL
        if op == "_?_:_":
            return join(args[1], args[2])
        if op == "-_":
            return args[0]
        first, second = args
        if first.kind == second.kind and first.kind in ("int", "uint", "double", "string"):
            return first if op == "_+_" or first.kind != "string" else DYN
        if op == "_+_" and first.kind == second.kind == "list":
            return join(first, second)
        return DYN


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
