"""Typed policy documents: what the loader produces and the engine reads.

Everything here is immutable and compiled: CEL programs are built once at load, so the
admission path only looks things up.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.errors import PolicyProblem
from webhook.policy.cel.expression import CelExpression
from webhook.policy.model.block import BlockSpec, Phase
from webhook.policy.model.decision import FailurePolicy, Mode
from webhook.policy.model.key_table import KeyMatch
from webhook.policy.model.kinds import SHORT_NAMES, KindRef, merge
from webhook.policy.model.location import SourceLocation
from webhook.policy.model.selectors import LabelSelector

ALL_OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")

# The internal-load-balancer annotation of each cloud flavour (SPEC: shipped policies).
INTERNAL_LB_FLAVOURS: dict[str, tuple[str, str]] = {
    "aws": ("service.beta.kubernetes.io/aws-load-balancer-internal", "true"),
    "aws-lbc": ("service.beta.kubernetes.io/aws-load-balancer-scheme", "internal"),
    "gcp": ("networking.gke.io/load-balancer-type", "Internal"),
    "azure": ("service.beta.kubernetes.io/azure-load-balancer-internal", "true"),
    # Each below as its cloud controller documents it (sources in docs/policies.md).
    "oci": ("service.beta.kubernetes.io/oci-load-balancer-internal", "true"),
    "oci-nlb": ("oci-network-load-balancer.oraclecloud.com/internal", "true"),
    "digitalocean": ("service.beta.kubernetes.io/do-loadbalancer-network", "INTERNAL"),
    "ibm": ("service.kubernetes.io/ibm-load-balancer-cloud-provider-ip-type", "private"),
    "alibaba": ("service.beta.kubernetes.io/alibaba-cloud-loadbalancer-address-type", "intranet"),
    "openstack": ("service.beta.kubernetes.io/openstack-internal-load-balancer", "true"),
    "hetzner": ("load-balancer.hetzner.cloud/disable-public-network", "true"),
}


@dataclass(frozen=True, slots=True)
class Exclude:
    namespaces: frozenset[str] = frozenset()
    usernames: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Match:
    """What a policy judges. ``kinds`` holds the keys of the kinds matched (see kinds.py),
    ``resources`` where the API serves each (resolved from the short names when absent)."""

    kinds: frozenset[str]
    operations: frozenset[str]
    namespace_selector: LabelSelector | None = None
    object_selector: LabelSelector | None = None
    exclude: Exclude = field(default_factory=Exclude)
    resources: tuple[KindRef, ...] = ()

    def __post_init__(self) -> None:
        if not self.resources:
            refs = [SHORT_NAMES[k] for k in self.kinds if k in SHORT_NAMES]
            object.__setattr__(self, "resources", merge(refs))


@dataclass(frozen=True, slots=True)
class NamedExpression:
    """A ``matchConditions`` entry or a ``variables`` entry."""

    name: str
    expression: CelExpression


@dataclass(frozen=True, slots=True)
class Validation:
    expression: CelExpression
    message: str | None = None
    message_expression: CelExpression | None = None


@dataclass(frozen=True, slots=True)
class Limit:
    where: CelExpression | None
    max: int | None
    max_expression: CelExpression | None
    message: str | None


@dataclass(frozen=True, slots=True)
class Unique:
    """Keys (hosts, host+path...) an object holds that no object in another namespace may
    hold too, across every kind the policy matches (see webhook/policy/blocks/keys.py)."""

    keys: CelExpression  # over ``object`` alone: a list of strings
    scope: str = "Cluster"  # keys are unique across namespaces of the whole cluster
    message: str | None = None
    # How keys compare: as strings, or as hosts and paths that overlap (hostpath.py)
    match: KeyMatch = KeyMatch.EXACT
    # HostPath only: the namespace annotation whose hosts are reserved for the namespace
    grant_annotation: str | None = None


@dataclass(frozen=True, slots=True)
class SetAnnotations:
    """Add annotations that are absent; never overwrite what the user set."""

    annotations: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class InternalLoadBalancer:
    """Add the flavour's internal-LB annotation unless the Service already has it."""

    flavour: str

    @property
    def annotation(self) -> tuple[str, str]:
        return INTERNAL_LB_FLAVOURS[self.flavour]


@dataclass(frozen=True, slots=True)
class RawPatch:
    operations: tuple[Mapping[str, Any], ...]


Mutation = SetAnnotations | InternalLoadBalancer | RawPatch


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    description: str
    mode: Mode
    failure_policy: FailurePolicy
    match: Match
    match_conditions: tuple[NamedExpression, ...] = ()
    variables: tuple[NamedExpression, ...] = ()
    validations: tuple[Validation, ...] = ()
    limit: Limit | None = None
    mutations: tuple[Mutation, ...] = ()
    unique: Unique | None = None
    source: SourceLocation = field(default_factory=lambda: SourceLocation("<memory>"))
    # ``spec.shadow``: a candidate the server judges beside the enforced set and never
    # answers with (docs/shadow.md); offline commands judge it like any other policy.
    shadow: bool = False
    # Blocks a plug-in registered (webhook/policy/blocks/registry.py): (YAML key, data) in
    # the registry's order. A tuple, so a policy stays hashable.
    blocks: tuple[tuple[str, BlockSpec], ...] = ()

    def expressions(self) -> Iterator[CelExpression]:
        """Every compiled expression of the policy."""
        for named in (*self.match_conditions, *self.variables):
            yield named.expression
        for validation in self.validations:
            yield validation.expression
            if validation.message_expression is not None:
                yield validation.message_expression
        if self.limit is not None:
            for expression in (self.limit.where, self.limit.max_expression):
                if expression is not None:
                    yield expression
        if self.unique is not None:
            yield self.unique.keys
        for _, block in self.blocks:
            yield from block.expressions()

    def block(self, name: str) -> BlockSpec | None:
        """The data of the plug-in block ``name`` (its YAML key), if the policy has it."""
        return next((spec for key, spec in self.blocks if key == name), None)

    @property
    def mutates(self) -> bool:
        return bool(self.mutations) or any(
            block.phase is Phase.MUTATE for _, block in self.blocks
        )

    @property
    def validates(self) -> bool:
        return (
            bool(self.validations)
            or self.limit is not None
            or self.unique is not None
            or any(block.phase is Phase.VALIDATE for _, block in self.blocks)
        )


@dataclass(frozen=True, slots=True)
class WebhookRule:
    """What one webhook configuration must send us for one kind."""

    kind: str
    group: str
    version: str
    resource: str
    operations: tuple[str, ...]
    versions: tuple[str, ...] = ()  # every version named (default: ``version``)
    namespaced: bool = True

    @property
    def api_versions(self) -> tuple[str, ...]:
        return self.versions or (self.version,)


@dataclass(frozen=True)
class PolicySet:
    """A loaded, fully valid set of policies, in load order."""

    policies: tuple[Policy, ...]
    sources: tuple[str, ...] = ()
    # Load-time findings that do not refuse a policy (an estimated cost over budget).
    warnings: tuple[PolicyProblem, ...] = ()

    def __post_init__(self) -> None:
        by_kind: dict[str, list[Policy]] = {}
        for policy in self.policies:
            for kind in policy.match.kinds:
                by_kind.setdefault(kind, []).append(policy)
        object.__setattr__(self, "_by_kind", {k: tuple(v) for k, v in by_kind.items()})

    def for_kind(self, kind: str) -> tuple[Policy, ...]:
        by_kind: dict[str, tuple[Policy, ...]] = self._by_kind  # type: ignore[attr-defined]
        return by_kind.get(kind, ())

    def get(self, name: str) -> Policy | None:
        return next((p for p in self.policies if p.name == name), None)

    def __len__(self) -> int:
        return len(self.policies)

    def kinds(self) -> tuple[KindRef, ...]:
        """Every kind some policy matches, once each (what the caches hold and commands
        read), sorted by key."""
        return merge(ref for policy in self.policies for ref in policy.match.resources)

    def webhook_rules(self, *, mutating: bool) -> list[WebhookRule]:
        """Kinds and operations the validating (or mutating) webhook must receive."""
        operations: dict[str, set[str]] = {}
        refs: list[KindRef] = []
        for policy in self.policies:
            wanted = policy.mutates if mutating else policy.validates
            if not wanted:
                continue
            for ref in policy.match.resources:
                refs.append(ref)
                operations.setdefault(ref.key, set()).update(policy.match.operations)
        rules = []
        for ref in merge(refs):
            ops = tuple(op for op in ALL_OPERATIONS if op in operations[ref.key])
            rules.append(
                WebhookRule(ref.kind, ref.group, ref.version, ref.resource, ops, ref.versions,
                            ref.namespaced)
            )
        return rules
