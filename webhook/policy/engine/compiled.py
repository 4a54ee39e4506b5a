"""A policy set compiled once for evaluation: what every engine over that set shares.

Compiling means rewriting each expression to read flat, projected bindings (see
bindings.py), indexing policies by kind, and compiling each policy's blocks (with the
counters and key indexes they ask the cluster backend for). Engines that run
a part of the set (the server's /validate, /mutate and audit-mode mutations) are views over
one compiled set, so a reload compiles every expression once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.policy.blocks import registry
from webhook.policy.blocks.protocol import Block, CompiledBlock
from webhook.policy.cel.expression import CelExpression
from webhook.policy.engine.bindings import Binding, BindingPlan
from webhook.policy.engine.budget import (
    BODY_ROOTS,
    Guard,
    SizeCheck,
    SizeWalk,
    build_condition_guards,
    build_guards,
    merged_walk,
    size_check,
    size_walk,
)
from webhook.policy.engine.prebind import Prebind, prebinder
from webhook.policy.model.block import Phase
from webhook.policy.model.decision import ViolationSource
from webhook.policy.model.namespaces import namespace_object
from webhook.policy.model.policy import Policy, PolicySet
from webhook.policy.model.ports import KeyIndex, ObjectCounter


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
        # namespaceObject as CEL sees it, per Namespace object (or name, when unknown)
        self._objects: dict[object, tuple[object, Mapping[str, Any]]] = {}

    def namespace_object(
        self, name: str, namespace: Mapping[str, Any] | None
    ) -> Mapping[str, Any]:
        """``namespace_object(name, namespace)``, made once per Namespace object: every
        admission in a namespace reads the same one (CEL never changes a value)."""
        key = _identity(name if namespace is None else namespace)
        entry = self._objects.get(key)
        if entry is not None and entry[0] is namespace:
            return entry[1]
        value = namespace_object(name, namespace)
        if len(self._objects) >= self.capacity:
            self._objects.clear()
        self._objects[key] = (namespace, value)
        return value

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


@dataclass(frozen=True, slots=True)
class PolicyBlocks:
    """One policy's compiled blocks, by phase, in the registry's order."""

    mutate: tuple[CompiledBlock, ...]
    validate: tuple[CompiledBlock, ...]
    # Findings no PolicyException waives for this policy (a block says which).
    unwaivable: frozenset[ViolationSource]
    reads_cluster: bool


@dataclass(frozen=True)
class CompiledPolicies:
    """``source`` with every expression rewritten for evaluation, indexed for the hot path."""

    source: PolicySet
    bindings: Mapping[str, Binding]
    by_kind: Mapping[str, tuple[Policy, ...]]  # the rewritten policies, in load order
    variables: Mapping[str, Mapping[str, CelExpression]]  # policy -> variable -> expression
    counters: Mapping[tuple[str, str], ObjectCounter]  # (policy, kind) -> its counter
    memo: NamespaceMemo = field(compare=False)
    reads_cluster: frozenset[str] = frozenset()  # policies whose verdict needs cluster state
    # policy -> the size check of a policy whose work grows with its input
    guards: Mapping[str, Guard] = field(default_factory=dict)
    # policy -> the same for its matchConditions, checked before they run
    condition_guards: Mapping[str, Guard] = field(default_factory=dict)
    # kind -> root -> the paths of every guard of its policies as one tree, laid out for
    # the walk made once a request (budget.fits)
    size_walks: Mapping[str, Mapping[str, SizeWalk]] = field(default_factory=dict)
    # kind -> those walks as generated checks: every root's, and the roots outside the
    # review's body alone (when its facts answer for the rest: context.py)
    size_checks: Mapping[str, tuple[SizeCheck, SizeCheck]] = field(default_factory=dict)
    key_indexes: tuple[KeyIndex, ...] = ()  # what the blocks ask the backend to index
    blocks: Mapping[str, PolicyBlocks] = field(default_factory=dict)  # policy -> its blocks
    # kind -> what binds the plain fields its policies read of the object (prebind.py)
    prebinders: Mapping[str, Prebind] = field(default_factory=dict)

    @classmethod
    def compile(cls, policies: PolicySet) -> CompiledPolicies:
        plan = BindingPlan()
        registered = registry.blocks()
        rewritten: list[Policy] = []
        blocks: dict[str, PolicyBlocks] = {}
        reads: dict[str, set[str]] = {}  # kind -> the bindings its policies read
        for policy in policies.policies:
            plan.reads = set()
            # Conditions and variables first, then each block: the order bindings are named.
            rewritten.append(plan.policy(policy))
            blocks[policy.name] = _compile_blocks(policy, registered, plan)
            for kind in policy.match.kinds:
                reads.setdefault(kind, set()).update(plan.reads)
        kinds = {kind for policy in rewritten for kind in policy.match.kinds}
        guards = build_guards(policies.policies)
        condition_guards = build_condition_guards(policies.policies)
        compiled = [block for found in blocks.values() for block in (*found.mutate,
                                                                     *found.validate)]
        walks = {
            kind: merged_walk(
                guard
                for policy in policies.policies if kind in policy.match.kinds
                for guard in (guards.get(policy.name), condition_guards.get(policy.name))
                if guard is not None
            )
            for kind in kinds
        }
        size_walks = {
            kind: {root: size_walk(trie) for root, trie in walk.items()}
            for kind, walk in walks.items()
        }
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
                (policy.name, counter.kind): counter
                for policy in policies.policies
                for block in (*blocks[policy.name].mutate, *blocks[policy.name].validate)
                for counter in block.counters
            },
            memo=NamespaceMemo(_namespace_only(rewritten, blocks, plan.bindings)),
            reads_cluster=frozenset(
                p.name for p in policies.policies if _reads_cluster(p, blocks[p.name])
            ),
            guards=guards,
            condition_guards=condition_guards,
            size_walks=size_walks,
            size_checks={
                kind: (size_check(rooted),
                       size_check({r: w for r, w in rooted.items() if r not in BODY_ROOTS}))
                for kind, rooted in size_walks.items()
            },
            key_indexes=tuple(index for block in compiled for index in block.key_indexes),
            blocks=blocks,
            prebinders={kind: found for kind, names in reads.items()
                        if (found := prebinder(plan.bindings[n] for n in names)) is not None},
        )

    def counter(self, policy: Policy, kind: str) -> ObjectCounter | None:
        return self.counters.get((policy.name, kind))


def _compile_blocks(
    policy: Policy, registered: Iterable[Block[Any]], plan: BindingPlan
) -> PolicyBlocks:
    mutate: list[CompiledBlock] = []
    validate: list[CompiledBlock] = []
    for block in registered:
        data = block.data(policy)
        if data is None:
            continue
        compiled = block.compile(data, policy, plan.expression)
        (mutate if block.phase is Phase.MUTATE else validate).append(compiled)
    every = (*mutate, *validate)
    return PolicyBlocks(
        tuple(mutate),
        tuple(validate),
        frozenset(source for block in every for source in block.unwaivable),
        any(block.reads_cluster for block in every),
    )


def _reads_cluster(policy: Policy, blocks: PolicyBlocks) -> bool:
    """A block that counts or indexes objects; a namespace selector or namespaceObject
    reads the Namespace."""
    if blocks.reads_cluster or policy.match.namespace_selector is not None:
        return True
    return any("namespaceObject" in e.variables for e in policy.expressions())


def _namespace_only(
    policies: Iterable[Policy], blocks: Mapping[str, PolicyBlocks], bindings: Mapping[str, Binding]
) -> frozenset[int]:
    """Variables, matchConditions and caps whose value depends on the Namespace alone: they
    read the Namespace and nothing else of the request, or only policy variables that do (a
    grant read from an annotation, then split or made a pattern)."""
    found: set[int] = set()
    for policy in policies:
        variables = {v.name: v.expression for v in policy.variables}
        # Variables first, to a fixed point: one may read another defined before it.
        namespace_variables: set[str] = set()
        grew = True
        while grew:
            grew = False
            for name, expression in variables.items():
                if name not in namespace_variables and _reads_only_the_namespace(
                        expression, bindings, namespace_variables):
                    namespace_variables.add(name)
                    grew = True
        found.update(id(variables[name]) for name in namespace_variables)
        # A matchCondition that reads the Namespace alone (is it restricted at all?).
        found.update(id(c.expression) for c in policy.match_conditions
                     if _reads_only_the_namespace(c.expression, bindings, set()))
        compiled = blocks[policy.name]
        for block in (*compiled.mutate, *compiled.validate):
            found.update(id(e) for e in block.namespace_only
                         if _reads_only_the_namespace(e, bindings, namespace_variables))
    return frozenset(found)


def _reads_only_the_namespace(expression: CelExpression, bindings: Mapping[str, Binding],
                              namespace_variables: set[str]) -> bool:
    reads = {bindings[v].variable for v in expression.variables if v in bindings}
    plain = expression.variables - set(bindings)
    return (reads <= {"namespaceObject"} and not plain
            and (bool(reads) or bool(expression.policy_variables))
            and all(name in namespace_variables for name in expression.policy_variables))
