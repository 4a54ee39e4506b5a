"""A policy set compiled once for evaluation: what every engine over that set shares.

Compiling means rewriting each expression to read flat, projected bindings (see
bindings.py), indexing policies by kind, and building the limit counters. Engines that run
a part of the set (the server's /validate, /mutate and audit-mode mutations) are views over
one compiled set, so a reload compiles every expression once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.policy.cel.expression import CelExpression
from webhook.policy.engine.bindings import Binding, BindingPlan
from webhook.policy.engine.budget import Guard, build_condition_guards, build_guards, merged_walk
from webhook.policy.engine.limits import LimitCounter
from webhook.policy.engine.unique import UniqueIndex
from webhook.policy.model.policy import Policy, PolicySet


class NamespaceMemo:
    """Results of expressions that read only the Namespace, kept per Namespace object.

    A cap read from a namespace annotation (``maxExpression``, a variable) is the same for
    every admission in that namespace until the Namespace changes; the cluster view hands out
    a new object when it does, so the object's identity is the key (and is held, so an id is
    never reused while its entry lives).
    """

    MISSING = object()

    def __init__(self, expressions: frozenset[int], capacity: int = 8192) -> None:
        self.expressions = expressions
        self.capacity = capacity
        self._entries: dict[tuple[int, object], tuple[object, Any]] = {}

    def get(self, expression: CelExpression, namespace: object) -> Any:
        entry = self._entries.get((id(expression), _identity(namespace)))
        if entry is not None and entry[0] is namespace:
            return entry[1]
        return self.MISSING

    def put(self, expression: CelExpression, namespace: object, value: Any) -> None:
        if len(self._entries) >= self.capacity:
            self._entries.clear()
        self._entries[(id(expression), _identity(namespace))] = (namespace, value)


def _identity(namespace: object) -> object:
    return namespace if isinstance(namespace, str) else id(namespace)


@dataclass(frozen=True)
class CompiledPolicies:
    """``source`` with every expression rewritten for evaluation, indexed for the hot path."""

    source: PolicySet
    bindings: Mapping[str, Binding]
    by_kind: Mapping[str, tuple[Policy, ...]]  # the rewritten policies, in load order
    variables: Mapping[str, Mapping[str, CelExpression]]  # policy -> variable -> expression
    counters: Mapping[tuple[str, str], LimitCounter]  # (policy, kind) -> its counter
    memo: NamespaceMemo = field(compare=False)
    reads_cluster: frozenset[str] = frozenset()  # policies whose verdict needs cluster state
    # policy -> the size check of a policy whose work grows with its input
    guards: Mapping[str, Guard] = field(default_factory=dict)
    # policy -> the same for its matchConditions, checked before they run
    condition_guards: Mapping[str, Guard] = field(default_factory=dict)
    # kind -> the paths of every guard of its policies as one tree (walked once a request)
    guard_walks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    unique_indexes: Mapping[str, UniqueIndex] = field(default_factory=dict)  # policy -> index

    @classmethod
    def compile(cls, policies: PolicySet) -> CompiledPolicies:
        plan = BindingPlan()
        rewritten = [plan.policy(policy) for policy in policies.policies]
        kinds = {kind for policy in rewritten for kind in policy.match.kinds}
        guards = build_guards(policies.policies)
        condition_guards = build_condition_guards(policies.policies)
        return cls(
            source=policies,
            bindings=plan.bindings,
            by_kind={
                kind: tuple(p for p in rewritten if kind in p.match.kinds) for kind in kinds
            },
            variables={
                policy.name: {v.name: v.expression for v in policy.variables}
                for policy in rewritten
            },
            counters={
                (policy.name, kind): LimitCounter.for_policy(policy, kind)
                for policy in policies.policies
                if policy.limit is not None
                for kind in sorted(policy.match.kinds)
            },
            memo=NamespaceMemo(_namespace_only(rewritten, plan.bindings)),
            reads_cluster=frozenset(p.name for p in policies.policies if _reads_cluster(p)),
            guards=guards,
            condition_guards=condition_guards,
            guard_walks={
                kind: merged_walk(
                    guard
                    for policy in policies.policies if kind in policy.match.kinds
                    for guard in (guards.get(policy.name), condition_guards.get(policy.name))
                    if guard is not None
                )
                for kind in kinds
            },
            unique_indexes={
                policy.name: UniqueIndex.for_policy(policy)
                for policy in policies.policies
                if policy.unique is not None
            },
        )

    def counter(self, policy: Policy, kind: str) -> LimitCounter | None:
        return self.counters.get((policy.name, kind))


def _reads_cluster(policy: Policy) -> bool:
    """A limit counts objects; a namespace selector or namespaceObject reads the Namespace."""
    if (
        policy.limit is not None
        or policy.unique is not None
        or policy.match.namespace_selector is not None
    ):
        return True
    return any("namespaceObject" in e.variables for e in policy.expressions())


def _namespace_only(policies: Iterable[Policy], bindings: Mapping[str, Binding]) -> frozenset[int]:
    """Variables and caps whose value depends on the Namespace alone."""
    found: set[int] = set()
    for policy in policies:
        candidates = [v.expression for v in policy.variables]
        if policy.limit is not None and policy.limit.max_expression is not None:
            candidates.append(policy.limit.max_expression)
        for expression in candidates:
            reads = {bindings[v].variable for v in expression.variables if v in bindings}
            plain = expression.variables - set(bindings)
            if reads == {"namespaceObject"} and not plain and not expression.policy_variables:
                found.add(id(expression))
    return frozenset(found)
