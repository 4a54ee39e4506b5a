"""Judging one parsed review: engine decision -> typed answer, plus the side effects
(audit log, decision log, metrics) that belong to answering it. No HTTP here.

/validate gives the verdict and never a patch; /mutate gives the patch and denies only when
a mutation fails under failurePolicy Fail: the API server calls /validate after every
mutating webhook has run, so that is where the final object is judged (SPEC "Responses").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from webhook.admission import wire
from webhook.admission.claiming import ClaimPlan
from webhook.admission.decisionlog import (
    EXEMPTED,
    RECORDED,
    WOULD_DENY,
    WOULD_PATCH,
    DecisionEntry,
    log_decision,
)
from webhook.admission.loaded import LoadedPolicies
from webhook.admission.review import Review, build_response
from webhook.admission.shadow import judge as judge_shadow
from webhook.admission.state import ServerState
from webhook.policy.model.decision import Decision, KeyClaim, LimitClaim, Mode
from webhook.policy.model.request import AdmissionRequest

log = logging.getLogger("edgewarden.server")


@dataclass(slots=True, init=False)
class Answer:
    """What an endpoint answers, and the result label its metrics count it under.

    (A written ``__init__`` and Final fields, not a frozen dataclass: made once per admission,
    see UserInfo in webhook/policy/model/request.py.)"""

    response: Final[wire.AdmissionResponse]
    result: Final[str]

    def __init__(self, response: wire.AdmissionResponse, result: str) -> None:
        self.response = response
        self.result = result


def validate(state: ServerState, review: Review) -> Answer | Awaitable[Answer]:
    """The verdict for one review; awaitable when it takes claims at the API server
    (webhook/admission/claiming.py), so only those reviews leave the synchronous path."""
    loaded = state.policies
    request = review.request
    if loaded is None:
        return Answer(not_ready_response(review), "error")
    started = time.monotonic() if loaded.shadow is not None else 0.0
    decision, plan = _evaluate_reserving(state, loaded, request)
    if plan is not None and state.claims is not None:
        return _claiming(state, loaded, request, decision, plan, started)
    return _validated(state, loaded, request, decision, started)


async def _claiming(
    state: ServerState, loaded: LoadedPolicies, request: AdmissionRequest, decision: Decision,
    plan: ClaimPlan, started: float,
) -> Answer:
    assert state.claims is not None
    await state.claims.take(plan, decision, state.view)
    return _validated(state, loaded, request, decision, started)


def _validated(
    state: ServerState, loaded: LoadedPolicies, request: AdmissionRequest, decision: Decision,
    started: float,
) -> Answer:
    state.decision_log.write(request, _record(state, loaded, "validate", request, decision))
    answer = _answer(request, decision, patch=None)
    _shadow(state, loaded, "validate", request, decision, started)
    return answer


def mutate(state: ServerState, review: Review) -> Answer:
    """The patch for one review (none in dry-run).

    /mutate never denies for a validation or a limit (SPEC): its engine runs mutations only.
    A mutation that cannot be evaluated follows its failurePolicy here as everywhere: Fail
    denies with the policy's error, as MutatingAdmissionPolicy does; Ignore admits and logs.
    """
    loaded = state.policies
    request = review.request
    if loaded is None:
        return Answer(not_ready_response(review), "error")
    started = time.monotonic() if loaded.shadow is not None else 0.0
    decision = loaded.mutate_engine.evaluate(request, state.view, state.exceptions)
    entries = _record(state, loaded, "mutate", request, decision)
    # In dry-run every patch is withheld; Audit-mode mutating policies are evaluated
    # apart and only reported.
    withheld = list(decision.mutations) if state.dry_run else []
    if loaded.audit_mutate_engine is not None:
        withheld += loaded.audit_mutate_engine.evaluate(
            request, state.view, state.exceptions).mutations
    entries += [
        DecisionEntry(m.policy, loaded.declared_modes.get(m.policy, Mode.AUDIT).value,
                   _describe_patch(m.patch), WOULD_PATCH)
        for m in withheld
    ]
    state.decision_log.write(request, entries)
    patch = None if state.dry_run or not decision.allowed else decision.patch
    answer = _answer(request, decision, patch=patch)
    _shadow(state, loaded, "mutate", request, decision, started)
    return answer


def _shadow(
    state: ServerState, loaded: LoadedPolicies, endpoint: str, request: AdmissionRequest,
    decision: Decision, started: float,
) -> None:
    """The candidates' verdict, after the answer is decided and with what its evaluation
    left of the budget and deadline (docs/shadow.md); it never changes the answer."""
    if loaded.shadow is not None:
        judge_shadow(loaded.shadow, endpoint, request, decision, loaded.declared_modes,
                     cluster=state.view, exceptions=state.exceptions, started=started,
                     metrics=state.metrics)


def _record(
    state: ServerState, loaded: LoadedPolicies, endpoint: str, request: AdmissionRequest,
    decision: Decision,
) -> list[DecisionEntry]:
    """Metrics and log lines for the decision; the audit-log entries it calls for."""
    log_decision(endpoint, request, decision)
    entries: list[DecisionEntry] = []
    for violation in decision.violations:
        state.metrics.tallies.count_violation(violation.policy, violation.mode.value)
        declared = loaded.declared_modes.get(violation.policy, violation.mode)
        if state.dry_run:
            action = WOULD_DENY if declared is Mode.ENFORCE else RECORDED
        elif violation.mode is Mode.AUDIT:
            action = RECORDED
        else:
            continue
        entries.append(DecisionEntry(violation.policy, declared.value, violation.message, action))
    for exemption in decision.exemptions:
        # Every exemption is on the record: who was let through, by which exception.
        state.metrics.count_exemption(exemption.policy, exemption.would)
        declared = loaded.declared_modes.get(exemption.policy, exemption.mode)
        entries.append(
            DecisionEntry(exemption.policy, declared.value, exemption.warning(), EXEMPTED))
    return entries


def _answer(
    request: AdmissionRequest, decision: Decision, patch: list[dict[str, object]] | None
) -> Answer:
    response = build_response(
        request.uid,
        allowed=decision.allowed,
        message=decision.deny_message() if not decision.allowed else None,
        warnings=decision.warnings,
        audit_annotations=decision.audit_annotations,  # the engine's, one per Audit policy
        patch=patch,
    )
    if not decision.allowed:
        result = "denied"
    elif patch:
        result = "patched"
    elif decision.warnings:
        result = "warned"
    else:
        result = "allowed"
    return Answer(response, result)


def failure_response(state: ServerState, review: Review, endpoint: str) -> wire.AdmissionResponse:
    """Answer after an unexpected error as the policies' failurePolicy says: deny when a
    policy for this kind is ``Fail``, otherwise allow (the error is in the server log)."""
    loaded = state.policies
    request = review.request
    fail = loaded is None or request.key in loaded.failing_kinds
    if fail:
        return build_response(
            request.uid, allowed=False, code=500, reason="InternalError",
            message=(f"edgewarden could not judge this request (uid {request.uid}, see the "
                     f"webhook's log); its policies for {request.kind} say failurePolicy: Fail"),
        )
    return build_response(request.uid, allowed=True, warnings=[
        f"edgewarden could not judge this request on /{endpoint} (uid {request.uid}); "
        "allowed because its policies say failurePolicy: Ignore"
    ])


def not_ready_response(review: Review) -> wire.AdmissionResponse:
    return build_response(
        review.request.uid, allowed=False, code=503, reason="ServiceUnavailable",
        message="edgewarden has no policy set loaded yet",
    )


# Never a namespace's name (those are DNS labels): the lock of every unique-key admission.
CLUSTER_LOCK = "<cluster>"


def _evaluate_reserving(
    state: ServerState, loaded: LoadedPolicies, request: AdmissionRequest
) -> tuple[Decision, ClaimPlan | None]:
    """Evaluate, and reserve the limit places an allowed request takes; the places the API
    server arbitrates (claims) come back as a plan instead of being reserved here.

    Evaluation is synchronous on the event loop, so no other admission interleaves between
    judging and reserving here; the per-namespace lock also covers a reservation book
    shared with other threads. Dry-run requests are judged but reserve nothing (SPEC).
    """
    reservations = state.reservations
    if request.dry_run or (reservations is None and state.claims is None):
        return loaded.engine.evaluate(request, state.view, state.exceptions), None
    if reservations is None:
        decision = loaded.engine.evaluate(request, state.view, state.exceptions)
        plan = None
        if decision.allowed and (decision.limit_claims or decision.key_claims):
            plan, _, _ = _split(state, loaded, request, decision)
        return decision, plan
    # A unique key (a host) is contended across namespaces: one lock for the cluster.
    scope = CLUSTER_LOCK if request.key in loaded.unique_kinds else request.namespace
    plan = None
    with reservations.lock(scope):
        decision = loaded.engine.evaluate(request, state.view, state.exceptions)
        if decision.allowed and (decision.limit_claims or decision.key_claims):
            limits, keys = decision.limit_claims, decision.key_claims
            if state.claims is not None:
                plan, limits, keys = _split(state, loaded, request, decision)
            if limits or keys:
                # Keyed by uid: a CREATE with generateName may carry no name in the review.
                reservations.reserve(limits, request.uid, name=_object_name(request.object),
                                     keys=keys)
    return decision, plan


def _split(
    state: ServerState, loaded: LoadedPolicies, request: AdmissionRequest, decision: Decision
) -> tuple[ClaimPlan | None, list[LimitClaim], list[KeyClaim]]:
    assert state.claims is not None
    if state.dry_run:
        # serve --dry-run denies nothing: there is no place to arbitrate.
        return None, decision.limit_claims, decision.key_claims
    known = state.cluster.get_namespace(request.namespace) is not None
    return state.claims.split(loaded, request, decision, known)


def _object_name(obj: Mapping[str, Any] | None) -> str:
    metadata = obj.get("metadata") if obj is not None else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else ""


def _describe_patch(patch: tuple[dict[str, object], ...]) -> str:
    return "; ".join(f"{op.get('op')} {op.get('path')}" for op in patch)
