"""Worst-case cost of an expression, estimated at load from its syntax tree.

The units follow cel-go's estimator (which Kubernetes uses for CRD validation rules and
ValidatingAdmissionPolicy): about one unit per node evaluated, string work at 0.1 unit
per character, a scan of a list at one unit per element, and a comprehension costs its
body once per element, so nested comprehensions multiply. Sizes come from the schema
(maxItems, maxLength, maxProperties) where it has them and from the documented defaults
below where not; Kubernetes' own kinds declare no bounds, so for Services and Ingresses
the defaults decide. The engine can cap inputs at the sizes an estimate assumed
(:attr:`Estimate.assumed`): that is what makes the estimate a bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from webhook.policy.cel.checks.infer import TypeChecker
from webhook.policy.cel.checks.types import DYN, CelType
from webhook.policy.cel.syntax import (
    Call,
    Comprehension,
    Expr,
    Ident,
    ListExpr,
    Literal,
    MapExpr,
    Operator,
    Select,
    children,
)

# Sizes assumed for values whose schema gives no bound (docs/policies.md "Cost").
DEFAULT_LIST_ITEMS = 100
DEFAULT_MAP_ENTRIES = 100
DEFAULT_STRING_LENGTH = 256
STRING_FACTOR = 0.1  # cel-go's cost per character of string traversal

# Budgets, in the same units as Kubernetes' (k8s.io/apiserver/pkg/apis/cel/config.go).
EXPRESSION_WARNING = 1_000_000  # PerCallLimit: one evaluation may exceed its runtime limit
EXPRESSION_LIMIT = 10_000_000  # StaticEstimatedCostLimit: refused, as a CRD rule would be
POLICY_WARNING = 10_000_000  # RuntimeCELCostBudget: the whole policy per admission
POLICY_LIMIT = 100_000_000  # StaticEstimatedCRDCostLimit: refused

_STRING_FUNCTIONS = frozenset(
    {"contains", "startsWith", "endsWith", "charAt", "indexOf", "lastIndexOf", "substring"}
    | {"replace", "split", "lowerAscii", "upperAscii", "trim", "reverse", "string", "int"}
    | {"double", "uint", "bytes", "timestamp", "duration", "strings.quote", "base64.encode"}
    | {"base64.decode", "bool"}
)
_LINEAR_FUNCTIONS = frozenset(
    {"sum", "min", "max", "math.greatest", "math.least", "flatten", "slice", "join", "first"}
    | {"last", "lists.range", "sets.of", "sets.contains"}
    | {"sets.equivalent", "sets.intersects"}
)
_PAIRWISE_FUNCTIONS: frozenset[str] = frozenset()  # ours are hashed (policy/functions.py)
# What an unbounded value of a kind is assumed to hold (a dyn may be a list).
_DEFAULTS = {
    "list": ("list items", DEFAULT_LIST_ITEMS),
    "dyn": ("list items", DEFAULT_LIST_ITEMS),
    "map": ("map entries", DEFAULT_MAP_ENTRIES),
    "string": ("string length", DEFAULT_STRING_LENGTH),
    "bytes": ("string length", DEFAULT_STRING_LENGTH),
}


@dataclass(frozen=True, slots=True)
class Estimate:
    """An expression's worst-case cost, and the input sizes it assumed for unbounded values
    (list items, map entries, string length), as the engine may cap them."""

    cost: float
    assumed: tuple[tuple[str, int], ...] = ()


class CostEstimator:
    """Estimates one expression, with the same variable types the checker infers."""

    def __init__(
        self,
        roots: Mapping[str, CelType],
        variables: Mapping[str, CelType],
        sizes: Mapping[str, float],
        kind: str | None = None,
    ) -> None:
        self.types = TypeChecker(roots, variables, kind)
        self.variable_sizes = sizes  # the estimated size of each policy variable's value
        self.assumed: dict[str, int] = {}

    def estimate(self, tree: Expr) -> Estimate:
        self.assumed.clear()
        cost = self.cost(tree, {})
        return Estimate(cost, tuple(sorted(self.assumed.items())))

    # -- sizes ---------------------------------------------------------------------------

    def size(self, node: Expr, scope: dict[str, CelType]) -> float:
        """The largest number of elements (list, map) or characters (string) of a value."""
        if isinstance(node, Literal):
            return float(len(node.value)) if isinstance(node.value, str | bytes) else 1.0
        if isinstance(node, ListExpr):
            return float(len(node.items))
        if isinstance(node, MapExpr):
            return float(len(node.entries))
        if isinstance(node, Comprehension) and node.macro in ("map", "filter"):
            return self.size(node.range, scope)
        if isinstance(node, Select) and _is_policy_variable(node.operand, scope):
            return self.variable_sizes.get(node.field, self.default(DYN, node))
        if isinstance(node, Operator) and node.op == "_+_":
            return self._sum_sizes(node.args, scope)
        if isinstance(node, Operator) and node.op == "_?_:_":
            taken = self.types.kind_test(node.args[0])
            if taken is not None:  # object.kind == 'K' ? a : b, judged for one kind
                return self.size(node.args[1] if taken else node.args[2], scope)
            return max(self.size(node.args[1], scope), self.size(node.args[2], scope))
        if isinstance(node, Call) and node.function == "split":
            target = node.target if node.target is not None else node.args[0]
            return self.size(target, scope)
        if isinstance(node, Call) and node.function == "sets.of" and node.args:
            return self.size(node.args[0], scope)
        if isinstance(node, Call) and node.function == "flatten":
            target = node.target if node.target is not None else node.args[0]
            return self.size(target, scope) * DEFAULT_LIST_ITEMS
        return self.default(self.types.infer(node, scope), node)

    def default(self, kind: CelType, node: Expr) -> float:
        if kind.bound is not None:
            return float(kind.bound)
        name, assumed = _DEFAULTS.get(kind.kind, ("", 1))
        if name:
            self.assumed[name] = assumed
        return float(assumed)

    def element_type(self, ranged: CelType) -> CelType:
        if ranged.kind == "list" and ranged.element is not None:
            return ranged.element
        return DYN

    # -- cost ----------------------------------------------------------------------------

    def cost(self, node: Expr, scope: dict[str, CelType]) -> float:
        if isinstance(node, Comprehension):
            return self.comprehension(node, scope)
        own = 1.0  # an identifier, a selection, a has() test, an index, a literal
        if isinstance(node, Call):
            own += self.call(node, scope)
        elif isinstance(node, Operator):
            own += self.operator(node, scope)
        if isinstance(node, Operator) and node.op == "_?_:_":
            condition, first, second = node.args
            taken = self.types.kind_test(condition)
            if taken is not None:  # object.kind == 'K' ? a : b, judged for one kind
                branches = self.cost(first if taken else second, scope)
            else:
                branches = max(self.cost(first, scope), self.cost(second, scope))
            return own + self.cost(condition, scope) + branches
        for child in children(node):  # a loop, not a generator: one frame less per level
            own += self.cost(child, scope)
        return own

    def _sum_sizes(self, args: tuple[Expr, ...], scope: dict[str, CelType]) -> float:
        total = 0.0
        for arg in args:  # a loop, not a generator: a long `+` chain recurses here
            total += self.size(arg, scope)
        return total

    def comprehension(self, node: Comprehension, scope: dict[str, CelType]) -> float:
        ranged = self.types.infer(node.range, scope)
        items = self.size(node.range, scope)
        element = self.element_type(ranged) if ranged.kind == "list" else DYN
        if ranged.kind in ("map", "object"):
            element = CelType("string")
        inner = {**scope, node.variable: element}
        body = sum(self.cost(part, inner) for part in node.body)
        # cel-go counts each iteration's bookkeeping (the loop step and accumulator) too.
        return self.cost(node.range, scope) + items * (body + 1) + 1

    def call(self, node: Call, scope: dict[str, CelType]) -> float:
        subject = node.target if node.target is not None else (node.args[0] if node.args else None)
        if subject is None:
            return 0.0
        size = self.size(subject, scope)
        name = node.function
        if name == "matches" and node.args:
            pattern = self.size(node.args[-1], scope)
            return STRING_FACTOR * size * max(1.0, STRING_FACTOR * pattern)
        if name in _STRING_FUNCTIONS:
            return STRING_FACTOR * size
        if name in _LINEAR_FUNCTIONS:
            return size
        if name == "sort":
            return size * max(1.0, math.log2(max(size, 1.0)))
        if name == "distinct" or name in _PAIRWISE_FUNCTIONS:
            other = self.size(node.args[-1], scope) if node.args else size
            return size * other
        return 0.0

    def operator(self, node: Operator, scope: dict[str, CelType]) -> float:
        op = node.op
        if op == "@in":
            container = self.types.infer(node.args[1], scope)
            return self.size(node.args[1], scope) if container.kind in ("list", "dyn") else 1.0
        if op in ("_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_", "_+_"):
            kinds = {self.types.infer(arg, scope).kind for arg in node.args}
            if kinds & {"string", "bytes"}:
                return STRING_FACTOR * self._sum_sizes(node.args, scope)
            if kinds & {"list", "map"}:
                return self._sum_sizes(node.args, scope)
        return 0.0


def _is_policy_variable(node: Expr, scope: dict[str, CelType]) -> bool:
    return isinstance(node, Ident) and node.name == "variables" and "variables" not in scope
