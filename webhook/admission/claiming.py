"""The admission edge of claims (webhook/cluster/claims.py): which of an allowed decision's
places go to the API server, and taking them before the answer.

Claimed: every place of an Enforce policy's ``limit`` that no managed ResourceQuota backs
(``serve --manage-quotas`` backs the LoadBalancer caps; the rest, a ``where`` a quota
cannot express, is claimed), and every key of an Enforce ``unique`` policy. Warn and Audit
policies deny nothing, so a race costs them a warning at most: they keep the in-process
reservation. Dry-run requests claim nothing (SPEC).

The claim is blocking I/O: it runs on a thread pool of its own, so the event loop keeps
judging other reviews meanwhile. When the API server cannot say (down, CRD missing,
RBAC), each policy involved fails as its failurePolicy says, with the reason in one line.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from webhook.cluster.claims import (
    Admission,
    ClaimBook,
    ClaimUnavailable,
    KeyPlace,
    LimitPlace,
)
from webhook.offline.quota import counts_loadbalancers
from webhook.policy.blocks.keys import UniqueIndex
from webhook.policy.engine.evaluation import Engine
from webhook.policy.model.decision import (
    Decision,
    EvaluationFailure,
    FailurePolicy,
    KeyClaim,
    LimitClaim,
    Mode,
    Violation,
    ViolationSource,
)
from webhook.policy.model.policy import Policy
from webhook.policy.model.ports import ClusterView, ObjectCounter
from webhook.policy.model.request import AdmissionRequest


class LoadedPolicies(Protocol):
    """What claims read of the server's loaded set (admission/state.py LoadedPolicies meets
    it); a protocol, so this module and state.py do not import each other."""

    @property
    def engine(self) -> Engine: ...

    @property
    def declared_modes(self) -> Mapping[str, Mode]: ...

log = logging.getLogger("edgewarden.claims")


@dataclass(frozen=True, slots=True)
class ClaimPlan:
    """What one admission claims at the API server."""

    admission: Admission
    keys: tuple[KeyPlace, ...]
    limits: tuple[LimitPlace, ...]
    policies: tuple[Policy, ...]  # the policies involved (for failurePolicy)


class _SetFacts:
    """What claims need to know about one loaded policy set, computed once per set."""

    def __init__(self, loaded: LoadedPolicies, manage_quotas: bool) -> None:
        engine = loaded.engine
        self.engine = engine
        policies = engine.policies.policies
        self.policies: dict[str, Policy] = {p.name: p for p in policies}
        self.quota_backed = frozenset(
            p.name for p in policies if manage_quotas and counts_loadbalancers(engine, p))
        self.counters: dict[str, ObjectCounter] = {c.key: c for c in engine.counters()}
        # The unique block's indexes; another block's key claims stay in-process.
        self.indexes: dict[str, UniqueIndex] = {
            i.key: i for i in engine.key_indexes() if isinstance(i, UniqueIndex)}
        self.enforced = frozenset(name for name, mode in loaded.declared_modes.items()
                                  if mode is Mode.ENFORCE)


class ClaimGate:
    def __init__(self, book: ClaimBook, *, manage_quotas: bool, workers: int = 32) -> None:
        self.book = book
        self.manage_quotas = manage_quotas
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="claims")
        self._facts: _SetFacts | None = None

    def _facts_for(self, loaded: LoadedPolicies) -> _SetFacts:
        facts = self._facts
        if facts is None or facts.engine is not loaded.engine:
            facts = self._facts = _SetFacts(loaded, self.manage_quotas)
        return facts

    def split(
        self, loaded: LoadedPolicies, request: AdmissionRequest, decision: Decision,
        namespace_known: bool,
    ) -> tuple[ClaimPlan | None, list[LimitClaim], list[KeyClaim]]:
        """The plan for the API server, and the places left to the in-process reservation."""
        facts = self._facts_for(loaded)
        limits: list[LimitPlace] = []
        reserve_limits: list[LimitClaim] = []
        for claim in decision.limit_claims:
            policy = facts.policies.get(claim.policy)
            counter = facts.counters.get(claim.counter_key)
            if (policy is None or counter is None or policy.limit is None
                    or claim.policy not in facts.enforced or claim.policy in facts.quota_backed):
                reserve_limits.append(claim)
                continue
            message = policy.limit.message or (
                f"at most {claim.maximum} {request.kind} objects may count here")
            limits.append(LimitPlace(claim, counter, claim.maximum, message))
        keys: dict[str, set[str]] = {}
        reserve_keys: list[KeyClaim] = []
        for key in decision.key_claims:
            if key.policy in facts.enforced and key.index_key in facts.indexes:
                keys.setdefault(key.policy, set()).add(key.key)
            else:
                reserve_keys.append(key)
        places = []
        for name, held in keys.items():
            policy = facts.policies[name]
            unique = policy.unique
            assert unique is not None
            index = facts.indexes[next(k.index_key for k in decision.key_claims
                                       if k.policy == name)]
            places.append(KeyPlace(name, index, unique.message
                                   or "already held in another namespace", frozenset(held)))
        if not limits and not places:
            return None, reserve_limits, reserve_keys
        involved = {p.claim.policy for p in limits} | {p.policy for p in places}
        admission = Admission(request.uid, request.namespace, request.key,
                              request.name or _object_name(request), namespace_known)
        plan = ClaimPlan(admission, tuple(places), tuple(limits),
                         tuple(facts.policies[name] for name in sorted(involved)))
        return plan, reserve_limits, reserve_keys

    async def take(self, plan: ClaimPlan, decision: Decision, view: ClusterView) -> None:
        """Claim the plan's places; a refusal or an API failure goes into ``decision``."""
        loop = asyncio.get_running_loop()
        try:
            refusals = await loop.run_in_executor(self._executor, functools.partial(
                self.book.take, plan.admission, plan.keys, plan.limits, view))
        except ClaimUnavailable as error:
            _unavailable(plan, decision, str(error))
            return
        limits = {p.claim.policy for p in plan.limits}
        for refusal in refusals:
            source = ViolationSource.LIMIT if refusal.policy in limits else ViolationSource.UNIQUE
            decision.violations.append(Violation(refusal.policy, Mode.ENFORCE, refusal.message,
                                                 source))
        if refusals:
            decision.allowed = False

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _unavailable(plan: ClaimPlan, decision: Decision, reason: str) -> None:
    """Each policy involved fails by its failurePolicy: Fail denies, Ignore admits (logged)."""
    message = ("policy could not be evaluated: edgewarden could not take its claim at the "
               f"API server ({reason})")
    log.warning("claim for uid %s not taken: %s", plan.admission.uid, reason)
    for policy in plan.policies:
        ignored = policy.failure_policy is FailurePolicy.IGNORE
        decision.errors.append(EvaluationFailure(policy.name, message, ignored))
        if ignored:
            decision.warnings.append(f"{policy.name}: {message}; allowed because its "
                                     "failurePolicy is Ignore")
        else:
            decision.violations.append(Violation(policy.name, Mode.ENFORCE, message,
                                                 ViolationSource.ERROR))
            decision.allowed = False


def _object_name(request: AdmissionRequest) -> str:
    obj: Mapping[str, object] | None = request.object
    metadata = obj.get("metadata") if obj is not None else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else ""
