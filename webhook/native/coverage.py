"""Where each policy can run: natively in the API server, only in the webhook, or partly.

A policy runs natively when every part of it has a ValidatingAdmissionPolicy or
MutatingAdmissionPolicy equivalent with the same meaning:

* validations, matchConditions, variables, messageExpression, modes and failurePolicy map
  one to one (they are VAP's own fields);
* ``match`` maps to matchConstraints (exclusions of namespaces to the namespaceSelector on
  ``kubernetes.io/metadata.name``, of users and groups to matchConditions);
* ``setAnnotations`` and ``internalLoadBalancer`` mutations in Enforce mode map to a
  MutatingAdmissionPolicy JSONPatch.

What keeps a policy on the webhook: ``limit`` (counting objects is not CEL over one
request), ``unique`` (keys held across namespaces), a raw ``patch`` mutation or a mutation in
Audit mode (a MutatingAdmissionPolicy cannot report a patch without making it), and a CEL
function the API server does not offer (edgewarden binds a few more: docs/policies.md).
PolicyExceptions are never honoured by native objects: keep a policy you grant exceptions
for on the webhook (``export --keep NAME``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from webhook.policy.cel.checks.functions import FUNCTIONS
from webhook.policy.model.block import Phase
from webhook.policy.model.decision import Mode
from webhook.policy.model.policy import InternalLoadBalancer, Policy, PolicySet, SetAnnotations

# edgewarden's functions that the API server's CEL environment for admission policies offers
# too, with the same meaning (compared with the real API server: tests/native): every one
# but edgewarden's own (sets.of, math.*, base64.*, bool; cel/checks/functions.py
# EDGEWARDEN_ONLY). Kubernetes' libraries (lists, regex, url, ip, cidr, quantity, format)
# and the optional syntax (rewritten into _optional_select/_optional_index; the exported
# expression is the source as written) are among them.
NATIVE_FUNCTIONS = frozenset(name for name, function in FUNCTIONS.items()
                             if function.kubernetes)


class Where(StrEnum):
    NATIVE = "native"  # everything runs in the API server
    PARTLY = "partly"  # validations natively, the rest on the webhook (or the other way)
    WEBHOOK = "webhook"  # nothing of it runs natively


@dataclass(frozen=True)
class Coverage:
    policy: str
    where: Where
    validating: bool  # a ValidatingAdmissionPolicy is exported
    mutating: bool  # a MutatingAdmissionPolicy is exported
    reasons: tuple[str, ...] = field(default_factory=tuple)  # why (part of) it stays

    def as_dict(self) -> dict[str, object]:
        return {"policy": self.policy, "runs": str(self.where), "validating": self.validating,
                "mutating": self.mutating, "webhookBecause": list(self.reasons)}


def foreign_functions(policy: Policy) -> list[str]:
    """Functions the policy calls that the API server's CEL does not have."""
    called = {name for expression in policy.expressions() for name in expression.functions}
    return sorted(called - NATIVE_FUNCTIONS)


def assess(policy: Policy, keep: Iterable[str] = ()) -> Coverage:
    """Where ``policy`` runs, and why what stays on the webhook stays."""
    if policy.name in set(keep):
        return Coverage(policy.name, Where.WEBHOOK, False, False,
                        ("kept on the webhook (--keep), e.g. for its PolicyExceptions",))
    if policy.shadow:  # exported, it would enforce: the API server has no shadow mode
        return Coverage(policy.name, Where.WEBHOOK, False, False,
                        ("spec.shadow: a candidate judged beside the enforced set, never "
                         "answering (docs/shadow.md)",))
    reasons: list[str] = []
    foreign = foreign_functions(policy)
    if foreign:
        reasons.append("calls " + ", ".join(f"{name}()" for name in foreign)
                       + ", which the API server's CEL does not offer")
    if policy.limit is not None:
        reasons.append("limit: counting objects in the namespace needs the cluster cache")
    if policy.unique is not None:
        reasons.append("unique: keys held across namespaces need the cluster cache")
    # A plug-in block (webhook/policy/blocks) has no native form: its phase stays here.
    for name, _ in policy.blocks:
        reasons.append(f"{name}: a plug-in block runs on the webhook only")
    plugged = {block.phase for _, block in policy.blocks}
    mutations_native = bool(policy.mutations) and not foreign and Phase.MUTATE not in plugged
    for mutation in policy.mutations:
        if not isinstance(mutation, SetAnnotations | InternalLoadBalancer):
            reasons.append("a raw patch mutation is not exported yet")
            mutations_native = False
    if policy.mutations and policy.mode is Mode.AUDIT:
        reasons.append("a mutation in Audit mode: a MutatingAdmissionPolicy cannot report a "
                       "patch without making it")
        mutations_native = False
    # The validating side goes whole or not at all: a limit or unique keys keep the policy's
    # validations with them on the webhook (one policy, one verdict, one message).
    validating = (bool(policy.validations) and not foreign and policy.limit is None
                  and policy.unique is None and Phase.VALIDATE not in plugged)
    mutating = mutations_native
    validating_stays = policy.validates and not validating
    mutating_stays = policy.mutates and not mutating
    if not validating and not mutating:
        where = Where.WEBHOOK
    elif validating_stays or mutating_stays:
        where = Where.PARTLY
    else:
        where = Where.NATIVE
    return Coverage(policy.name, where, validating, mutating, tuple(reasons))


def webhook_share(policies: PolicySet, keep: Iterable[str] = ()) -> PolicySet:
    """The policy set the webhook still judges once the native objects are applied: fully
    native policies left out, and of a partly native one the side that was exported."""
    kept = set(keep)
    remaining: list[Policy] = []
    for policy in policies.policies:
        coverage = assess(policy, kept)
        if coverage.where is Where.NATIVE:
            continue
        if coverage.validating:
            policy = dataclasses.replace(policy, validations=())
        if coverage.mutating:
            policy = dataclasses.replace(policy, mutations=())
        remaining.append(policy)
    return PolicySet(tuple(remaining), policies.sources, policies.warnings)
